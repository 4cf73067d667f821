"""Reuse is never wrong: the identity covers the endpoint and every generation setting, and an
answer cut short is stored marked and asked again. Real databases, the real ``openai`` client
against real local servers (``tests/llm_server.py``)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.identity import ModelIdentityWarning
from blarify_lab.llm import as_llm_provider, model_identity
from blarify_lab.openai_chat import OpenAIChat

from .helpers import make_tree, no_leftovers
from .llm_server import LLMTestServer, answer_for

pytest.importorskip("openai")

KEY = "sk-blarify-reuse-0xABAD1DEA-never-print"


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer(api_key=KEY) as running:
        yield running


def _chat(server: LLMTestServer, **kwargs: object) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=5, **kwargs)  # type: ignore[arg-type]


def _run(db: GraphDB, llm: object, **kwargs: object) -> RecursiveDFSProcessor:
    options: dict[str, object] = {"max_workers": 4, "progress": False, "scope": "subtree"}
    options.update(kwargs)
    proc = RecursiveDFSProcessor(db, llm, **options)  # type: ignore[arg-type]
    proc.process_node("/root")
    return proc


def _calls(proc: RecursiveDFSProcessor) -> int:
    assert proc.last_session is not None
    return proc.last_session.llm_calls


# --- the identity --------------------------------------------------------------------------


def test_the_same_model_name_on_another_base_url_asks_again(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 3, 1)
    with (
        LLMTestServer(api_key=KEY) as first,
        LLMTestServer(api_key=KEY) as second,
        _chat(first) as a,
        _chat(second) as b,
    ):
        assert _calls(_run(db_manager, a)) == total
        assert _calls(_run(db_manager, a)) == 0  # same server: reused
        assert _calls(_run(db_manager, b)) == total  # same name, another server
        assert len(second.chat_requests()) == total
        assert _calls(_run(db_manager, b)) == 0
    assert no_leftovers(db_manager)


def test_another_temperature_or_max_tokens_or_top_p_asks_again(
    db_manager: GraphDB, server: LLMTestServer
) -> None:
    total = make_tree(db_manager, 2, 1)
    settings: list[dict[str, object]] = [
        {},
        {"temperature": 0.7},
        {"temperature": 0.7, "max_tokens": 64},
        {"temperature": 0.7, "max_tokens": 64, "top_p": 0.5},
    ]
    for options in settings:
        with _chat(server, **options) as llm:
            assert _calls(_run(db_manager, llm)) == total, options
            assert _calls(_run(db_manager, llm)) == 0, options
    sent = server.chat_requests()[-1].body
    assert (sent["temperature"], sent["max_tokens"], sent["top_p"]) == (0.7, 64, 0.5)


def test_a_shorter_max_description_chars_asks_again(
    db_manager: GraphDB, server: LLMTestServer
) -> None:
    total = make_tree(db_manager, 2, 1)
    with _chat(server) as llm:
        assert _calls(_run(db_manager, llm)) == total
        assert _calls(_run(db_manager, llm, max_description_chars=500)) == total
        assert _calls(_run(db_manager, llm, max_description_chars=500)) == 0


@dataclass
class _Message:
    content: str
    response_metadata: dict[str, object] = field(default_factory=dict[str, object])


@dataclass
class BedrockLike:
    """LangChain's ChatBedrock keeps its model in ``model_id``, its region in
    ``region_name`` and its settings in ``model_kwargs``."""

    model_id: str
    region_name: str = "us-east-1"
    model_kwargs: dict[str, object] = field(default_factory=dict[str, object])
    calls: list[str] = field(default_factory=list[str])

    def invoke(self, prompt: str) -> _Message:
        self.calls.append(prompt)
        return _Message(answer_for(prompt))


@dataclass
class AzureLike:
    """LangChain's AzureChatOpenAI: ``model_name`` may stay at its default while the
    ``deployment_name`` says what answers."""

    deployment_name: str
    model_name: str = "gpt-35-turbo"
    azure_endpoint: str = "https://me.openai.azure.com/"
    temperature: float = 0.0
    calls: list[str] = field(default_factory=list[str])

    def invoke(self, prompt: str) -> _Message:
        self.calls.append(prompt)
        return _Message(answer_for(prompt))


def test_a_model_id_or_deployment_switch_asks_again(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 2, 2)
    haiku = BedrockLike("anthropic.claude-3-haiku")
    opus = BedrockLike("anthropic.claude-3-opus")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelIdentityWarning)  # a model is named: no fallback
        assert _calls(_run(db_manager, haiku)) == total
        assert _calls(_run(db_manager, opus)) == total
        assert len(opus.calls) == total
        assert _calls(_run(db_manager, BedrockLike("anthropic.claude-3-opus"))) == 0
        warmer = BedrockLike("anthropic.claude-3-opus", model_kwargs={"temperature": 0.9})
        assert _calls(_run(db_manager, warmer)) == total
        other_region = BedrockLike("anthropic.claude-3-opus", region_name="eu-west-1")
        assert _calls(_run(db_manager, other_region)) == total
        assert _calls(_run(db_manager, AzureLike("prod-gpt4o"))) == total
        assert _calls(_run(db_manager, AzureLike("prod-gpt4o-mini"))) == total
        assert _calls(_run(db_manager, AzureLike("prod-gpt4o-mini"))) == 0


def test_identity_keeps_secrets_and_credentials_out() -> None:
    @dataclass
    class WithSecrets:
        model: str = "m"
        base_url: str = "https://user:hunter2@llm.example.com/v1/?api-key=sekrit"
        api_key: str = "sk-never"
        model_kwargs: dict[str, object] = field(
            default_factory=lambda: {"temperature": 0.1, "api_key": "sk-nope"}
        )

    identity = model_identity(WithSecrets())
    assert identity == (
        'm {"base_url":"https://llm.example.com/v1","model_kwargs":{"temperature":0.1}}'
    )

    def call(prompt: str, *, model: str, temperature: float, api_key: str) -> str:
        return prompt

    cold = functools.partial(call, model="x", temperature=0.0, api_key="sk-1")
    warm = functools.partial(call, model="x", temperature=0.5, api_key="sk-1")
    assert model_identity(cold) != model_identity(warm)
    assert model_identity(functools.partial(call, model="x", temperature=0)) == model_identity(
        cold
    ), "0 and 0.0 are one temperature"
    assert "sk-1" not in model_identity(cold) + model_identity(warm)
    # a chat model's bound method is that chat model
    assert model_identity(BedrockLike("m-1").invoke) == model_identity(BedrockLike("m-1"))
    assert model_identity(BedrockLike("m-1").invoke) != model_identity(BedrockLike("m-2").invoke)


def test_a_class_name_identity_warns_exactly_once() -> None:
    class NoModelName:  # a fresh class: the warning is once per identity per process
        def get_completion(self, prompt: str) -> str:
            return "x"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = model_identity(NoModelName())
        second = model_identity(NoModelName())
        third = as_llm_provider(NoModelName()).identity  # the adapter answers for it
    assert first == second == third and first.endswith("NoModelName")
    found = [w for w in caught if issubclass(w.category, ModelIdentityWarning)]
    assert len(found) == 1, [str(w.message) for w in caught]
    assert issubclass(ModelIdentityWarning, UserWarning)
    assert "NoModelName" in str(found[0].message) and "model" in str(found[0].message)


# --- answers cut short ---------------------------------------------------------------------


def test_an_answer_cut_short_by_the_model_is_stored_marked_and_asked_again(
    db_manager: GraphDB, server: LLMTestServer
) -> None:
    total = make_tree(db_manager, 2, 2)
    server.set_finish_reason("length")
    with _chat(server, max_tokens=5) as llm:
        proc = _run(db_manager, llm)
        assert proc.last_session is not None
        report = proc.last_session.report()
        assert bool(report["truncated"].all()) and len(report) == total
        stored = bl.documentation(db_manager, "/root")
        assert len(stored) == total and bool(stored["truncated"].all())
        estimate = proc.estimate("/root", scope="subtree")
        assert int(estimate["cached"].iloc[0]) == 0  # the estimate agrees: asked again
        server.set_finish_reason("stop")
        proc = _run(db_manager, llm)
        assert _calls(proc) == total  # never reused as a finished description
        assert proc.last_session is not None
        assert not bool(proc.last_session.report()["truncated"].any())
        stored = bl.documentation(db_manager, "/root")
        assert not bool(stored["truncated"].any())
        assert _calls(_run(db_manager, llm)) == 0


def test_an_answer_cut_at_max_description_chars_is_marked_and_asked_again(
    db_manager: GraphDB,
) -> None:
    total = make_tree(db_manager, 1, 2)

    class Verbose:
        model = "verbose-1"
        long = True

        def get_completion(self, prompt: str) -> str:
            return answer_for(prompt) + (" and more" * 50 if self.long else "")

    llm = Verbose()
    proc = _run(db_manager, llm, max_description_chars=100)
    assert proc.last_session is not None
    assert bool(proc.last_session.report()["truncated"].all())
    assert bool(bl.documentation(db_manager, "/root")["truncated"].all())
    llm.long = False
    assert _calls(_run(db_manager, llm, max_description_chars=100)) == total
    assert _calls(_run(db_manager, llm, max_description_chars=100)) == 0
