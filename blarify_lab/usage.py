"""What one LLM call used: the ``Completion`` record, token estimates and prices.

::

    Completion(text, prompt_tokens, completion_tokens, estimated)
    estimate_tokens(text) -> int        tiktoken when installed and its files are at hand,
                                        else ceil(len(text) / 4)
    validate_prices(prices) -> dict     {"prompt": usd_per_million, "completion": usd_per_million}
    cost_usd(prompt_tokens, completion_tokens, prices) -> float

This module imports nothing from blarify_lab.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "PRICE_KEYS",
    "Completion",
    "cost_usd",
    "estimate_tokens",
    "validate_prices",
]

PRICE_KEYS = ("prompt", "completion")
LENGTH_REASONS = frozenset({"length", "max_tokens"})  # finish reasons of a cut-short answer


@dataclass(frozen=True, slots=True)
class Completion:
    """The text an LLM answered and the tokens the call used.

    ``estimated`` is True when the provider did not report its usage and the token counts are
    ``estimate_tokens`` of the prompt and of the text. ``finish_reason`` is why the model
    stopped, as the provider says it (None when unknown); ``truncated`` is True when it stopped
    at its length limit (``"length"``, or ``"max_tokens"`` as Anthropic and Bedrock say).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    finish_reason: str | None = None

    @property
    def truncated(self) -> bool:
        """The answer was cut short by the model's length limit."""
        return self.finish_reason is not None and self.finish_reason.lower() in LENGTH_REASONS

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def estimate(cls, prompt: str, text: str) -> Completion:
        """A completion whose usage is estimated from the prompt and the answer."""
        return cls(text, estimate_tokens(prompt), estimate_tokens(text), estimated=True)


# --- token estimates ------------------------------------------------------------------------

_TIKTOKEN_ENCODING = "o200k_base"
_TIKTOKEN_LOAD_TIMEOUT_S = 3.0
_tokenizer_lock = threading.Lock()
_tokenizer: Callable[[str], int] | None = None
_tokenizer_tried = False


def _load_tiktoken() -> Callable[[str], int] | None:
    """tiktoken's ``o200k_base`` counter, or None when tiktoken is missing or cannot load it.

    tiktoken fetches its BPE file from the internet on first use (then caches it); offline that
    fails or hangs, so the load runs in a daemon thread that is given a few seconds at most.
    """
    try:
        import tiktoken  # pyright: ignore[reportMissingImports]
    except ImportError:
        return None
    result: list[Callable[[str], int]] = []

    def load() -> None:
        try:
            encoding = tiktoken.get_encoding(_TIKTOKEN_ENCODING)
            encode = encoding.encode_ordinary
            encode("warm up")
            result.append(lambda text: len(encode(text)))
        except Exception:  # no network, no cache, a broken install: fall back
            pass

    loader = threading.Thread(target=load, name="blarify-lab-tiktoken", daemon=True)
    loader.start()
    loader.join(_TIKTOKEN_LOAD_TIMEOUT_S)
    return result[0] if result else None


def _get_tokenizer() -> Callable[[str], int] | None:
    global _tokenizer, _tokenizer_tried
    if _tokenizer_tried:
        return _tokenizer
    with _tokenizer_lock:
        if not _tokenizer_tried:
            _tokenizer = _load_tiktoken()
            _tokenizer_tried = True
    return _tokenizer


def _reset_tokenizer() -> None:
    """Forget the tokenizer choice (tests swap ``tiktoken`` in and out)."""
    global _tokenizer, _tokenizer_tried
    with _tokenizer_lock:
        _tokenizer, _tokenizer_tried = None, False


def estimate_tokens(text: str) -> int:
    """How many tokens ``text`` is: tiktoken's count when it is installed and its encoding
    loads (tried once per process), else ``ceil(len(text) / 4)``."""
    if not text:
        return 0
    tokenizer = _get_tokenizer()
    if tokenizer is not None:
        try:
            return tokenizer(text)
        except Exception:
            pass
    return math.ceil(len(text) / 4)


# --- prices ---------------------------------------------------------------------------------


def validate_prices(prices: Mapping[str, float]) -> dict[str, float]:
    """Check ``{"prompt": usd_per_million, "completion": usd_per_million}``; return it as floats.

    Raises ``ValueError`` naming the problem: not a mapping, an unknown or missing key, a value
    that is not a number, negative, NaN or infinite.
    """
    if not isinstance(prices, Mapping):
        raise ValueError(
            f"prices must be a dict like {{'prompt': 0.15, 'completion': 0.6}} (USD per million "
            f"tokens), got {type(prices).__name__}"
        )
    unknown = sorted(str(k) for k in prices if k not in PRICE_KEYS)
    if unknown:
        raise ValueError(
            f"unknown price key(s) {', '.join(map(repr, unknown))}: prices takes 'prompt' and "
            "'completion' (USD per million tokens)"
        )
    missing = [k for k in PRICE_KEYS if k not in prices]
    if missing:
        raise ValueError(
            f"prices lacks {', '.join(map(repr, missing))}: give both 'prompt' and 'completion' "
            "(USD per million tokens; 0 for a free model)"
        )
    checked: dict[str, float] = {}
    for key in PRICE_KEYS:
        value = prices[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"prices[{key!r}] must be a number (USD per million tokens), got {value!r}"
            )
        if not math.isfinite(value):
            raise ValueError(f"prices[{key!r}] must be finite, got {value!r}")
        if value < 0:
            raise ValueError(f"prices[{key!r}] must not be negative, got {value!r}")
        checked[key] = float(value)
    return checked


def cost_usd(prompt_tokens: int, completion_tokens: int, prices: Mapping[str, float]) -> float:
    """The cost in USD of a call: tokens times ``prices`` (USD per million tokens)."""
    checked = validate_prices(prices)
    for name, count in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name} must be a non-negative int, got {count!r}")
    return (prompt_tokens * checked["prompt"] + completion_tokens * checked["completion"]) / 1e6
