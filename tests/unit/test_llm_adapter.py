"""as_llm_provider's complete() and identity, and model_identity's rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from blarify_lab.llm import ExtractiveSummarizer, LLMAdapter, as_llm_provider, model_identity
from blarify_lab.usage import Completion, estimate_tokens


@dataclass
class AIMessage:
    """What a LangChain chat model's invoke returns (the parts used)."""

    content: str
    usage_metadata: dict[str, int] | None = None


@dataclass
class ChatModel:
    """LangChain-like: ``invoke`` and ``model_name`` (as ChatOpenAI has it)."""

    model_name: str = "gpt-4o-mini"
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    )

    def invoke(self, prompt: str) -> AIMessage:
        return AIMessage(f"answer to {prompt}", self.usage)


class OwnComplete:
    model = "own-model"

    def get_completion(self, prompt: str) -> str:
        return "text only"

    def complete(self, prompt: str) -> Completion:
        return Completion("with usage", 100, 20, estimated=False)


class GetCompletionOnly:
    def get_completion(self, prompt: str) -> str:
        return "plain " + prompt


def plain_function(prompt: str) -> str:
    return "from a function"


def test_provider_with_its_own_complete_is_used_as_is() -> None:
    adapter = as_llm_provider(OwnComplete())
    assert isinstance(adapter, LLMAdapter)
    assert adapter.complete("p") == Completion("with usage", 100, 20, estimated=False)
    assert adapter.get_completion("p") == "text only"  # get_completion unchanged
    assert adapter.identity == "own-model"


def test_langchain_usage_metadata_is_read() -> None:
    adapter = as_llm_provider(ChatModel())
    completion = adapter.complete("hi")
    assert completion == Completion("answer to hi", 11, 7, estimated=False)
    assert adapter.get_completion("hi") == "answer to hi"
    assert adapter.identity == "gpt-4o-mini"


def test_langchain_without_usage_metadata_is_estimated() -> None:
    adapter = as_llm_provider(ChatModel(usage=None))
    completion = adapter.complete("x" * 40)
    assert completion.estimated
    assert completion.prompt_tokens == estimate_tokens("x" * 40)
    assert completion.completion_tokens == estimate_tokens(completion.text)


@pytest.mark.parametrize(
    "usage", [{"input_tokens": 3}, {"input_tokens": "3", "output_tokens": 4}, {}]
)
def test_partial_or_odd_usage_metadata_falls_back_to_an_estimate(usage: dict[str, Any]) -> None:
    assert as_llm_provider(ChatModel(usage=usage)).complete("p").estimated


def test_provider_without_usage_is_estimated() -> None:
    for llm in (GetCompletionOnly(), plain_function, lambda p: "from a lambda"):
        completion = as_llm_provider(llm).complete("a prompt of some length")
        assert completion.estimated is True
        assert completion.prompt_tokens == estimate_tokens("a prompt of some length")
        assert completion.completion_tokens == estimate_tokens(completion.text) > 0


def test_complete_checks_the_text_like_get_completion() -> None:
    with pytest.raises(TypeError, match="returned int"):
        as_llm_provider(lambda p: 42).complete("p")


def test_complete_accepts_an_object_with_text() -> None:
    @dataclass
    class CompletionResponse:  # LlamaIndex-like
        text: str

    class Llm:
        def __call__(self, prompt: str) -> str:
            return "call"

        def complete(self, prompt: str) -> CompletionResponse:
            return CompletionResponse("from complete")

    completion = as_llm_provider(Llm()).complete("p")
    assert completion.text == "from complete" and completion.estimated


def test_model_identity_rules() -> None:
    class WithModel:
        model = "llama3.1:8b"

        def get_completion(self, prompt: str) -> str:
            return "x"

    class WithBoth:
        model = "wins"
        model_name = "loses"

    class NonStringModel:
        model = object()
        model_name = ""

    class Raises:
        @property
        def model(self) -> str:
            raise RuntimeError("no")

    assert model_identity(WithModel()) == "llama3.1:8b"
    assert model_identity(WithBoth()) == 'wins {"model_name":"loses"}'  # both names count
    assert model_identity(ChatModel(model_name="claude-x")) == "claude-x"
    here = __name__
    assert model_identity(NonStringModel()) == (
        f"{here}.test_model_identity_rules.<locals>.NonStringModel"
    )
    assert model_identity(Raises()).endswith(".Raises")
    assert model_identity(GetCompletionOnly()) == f"{here}.GetCompletionOnly"
    assert model_identity(ExtractiveSummarizer()) == "blarify_lab.llm.ExtractiveSummarizer"
    assert model_identity(plain_function) == f"{here}.plain_function"
    # the adapter answers for what it wraps
    assert model_identity(as_llm_provider(WithModel())) == "llama3.1:8b"
    assert as_llm_provider(plain_function).identity == f"{here}.plain_function"
    assert as_llm_provider(as_llm_provider(ChatModel())).identity == "gpt-4o-mini"
