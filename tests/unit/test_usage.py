"""Completion, token estimates and prices."""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterator

import pytest

from blarify_lab import usage
from blarify_lab.usage import Completion, cost_usd, estimate_tokens, validate_prices


@pytest.fixture
def fresh_tokenizer() -> Iterator[None]:
    usage._reset_tokenizer()
    yield
    usage._reset_tokenizer()


def _fake_tiktoken(get_encoding: object) -> types.ModuleType:
    module = types.ModuleType("tiktoken")
    module.get_encoding = get_encoding  # type: ignore[attr-defined]
    return module


def test_estimate_without_tokenizer_is_a_quarter_of_the_characters(
    fresh_tokenizer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # import tiktoken -> ImportError
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4001) == math.ceil(4001 / 4)


def test_estimate_falls_back_when_tiktoken_cannot_download_its_files(
    fresh_tokenizer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def get_encoding(name: str) -> object:
        calls.append(name)
        raise ConnectionError("Failed to resolve 'openaipublic.blob.core.windows.net'")

    monkeypatch.setitem(sys.modules, "tiktoken", _fake_tiktoken(get_encoding))
    assert estimate_tokens("x" * 10) == 3
    assert estimate_tokens("y" * 10) == 3
    assert calls == ["o200k_base"]  # tried once per process, not per call


def test_estimate_uses_tiktoken_when_it_loads(
    fresh_tokenizer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Encoding:
        def encode_ordinary(self, text: str) -> list[int]:
            return [0] * len(text.split())

    monkeypatch.setitem(sys.modules, "tiktoken", _fake_tiktoken(lambda name: Encoding()))
    assert estimate_tokens("one two three four five") == 5


def test_completion_estimate_and_total() -> None:
    c = Completion.estimate("p" * 40, "t" * 8)
    assert c.estimated and c.text == "t" * 8
    assert c.prompt_tokens == estimate_tokens("p" * 40)
    assert c.total_tokens == c.prompt_tokens + c.completion_tokens
    assert Completion("x", 3, 4).estimated is False


def test_cost_usd() -> None:
    prices = {"prompt": 0.15, "completion": 0.60}
    assert cost_usd(1_000_000, 0, prices) == pytest.approx(0.15)
    assert cost_usd(2_000, 1_000, prices) == pytest.approx((2_000 * 0.15 + 1_000 * 0.60) / 1e6)
    assert cost_usd(0, 0, {"prompt": 0, "completion": 0}) == 0.0


@pytest.mark.parametrize(
    ("prices", "words"),
    [
        ({"prompt": 1.0, "completion": 1.0, "input": 2.0}, "unknown price key(s) 'input'"),
        ({"prompt": 1.0}, "lacks 'completion'"),
        ({"prompt": -1.0, "completion": 1.0}, "must not be negative"),
        ({"prompt": math.nan, "completion": 1.0}, "must be finite"),
        ({"prompt": 1.0, "completion": math.inf}, "must be finite"),
        ({"prompt": "1", "completion": 1.0}, "must be a number"),
        ({"prompt": True, "completion": 1.0}, "must be a number"),
        ([("prompt", 1.0)], "must be a dict"),
    ],
)
def test_bad_prices_are_refused_clearly(prices: object, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        validate_prices(prices)  # type: ignore[arg-type]


def test_bad_token_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="prompt_tokens"):
        cost_usd(-1, 0, {"prompt": 1, "completion": 1})
    assert validate_prices({"prompt": 1, "completion": 2}) == {"prompt": 1.0, "completion": 2.0}
