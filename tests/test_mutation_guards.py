"""Tests that each fail when a realistic one-line bug is planted (a mutation run found them
missing): documentation of a failed node, tokens multiplied by attempts, completion tokens
left out of ``tokens_per_minute``, and the attempts of a node whose retries ran out. Real
databases, the real ``openai`` client against a real local server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.errors import LLMCallError
from blarify_lab.llm_calls import call_llm
from blarify_lab.openai_chat import OpenAIChat
from blarify_lab.pacing import RateLimiter
from blarify_lab.usage import Completion, cost_usd

from .helpers import make_tree, no_leftovers
from .llm_server import Fault, LLMTestServer, answer_for

pytest.importorskip("openai")

KEY = "sk-blarify-mutants-0xFACADE-never-print"
PRICES = {"prompt": 2.0, "completion": 8.0}


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer(api_key=KEY) as running:
        yield running


@pytest.fixture
def chat(server: LLMTestServer) -> Iterator[OpenAIChat]:
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=5) as llm:
        yield llm


@dataclass
class SometimesFailing:
    """One model (one identity) that fails for the paths in ``failing``, today."""

    failing: set[str]
    model: str = "sometimes-1"
    asked: list[str] = field(default_factory=list[str])

    def get_completion(self, prompt: str) -> str:
        path = answer_for(prompt).removeprefix("Documents ").removesuffix(".")
        self.asked.append(path)
        if path in self.failing:
            raise ValueError(f"cannot document {path}")
        return answer_for(prompt)


def test_a_failed_node_gets_no_documentation_and_is_asked_again(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 2, 2)
    llm = SometimesFailing({"/root/c1/g2"})
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=2, progress=False)
    proc.process_node("/root")
    assert proc.last_session is not None and proc.last_session.counts["failed"] == 1
    stored = bl.documentation(db_manager, "/root")
    assert "/root/c1/g2" not in set(stored["path"]), "no documentation describes a failed node"
    assert not stored["description"].str.contains("[ERROR]", regex=False).any()
    # The same model, working again: the failed node is asked (and what saw its error too).
    llm.failing.clear()
    llm.asked.clear()
    rerun = RecursiveDFSProcessor(db_manager, llm, max_workers=2, progress=False)
    rerun.process_node("/root")
    assert "/root/c1/g2" in llm.asked
    assert rerun.last_session is not None and rerun.last_session.counts["failed"] == 0
    assert len(bl.documentation(db_manager, "/root")) == total
    assert no_leftovers(db_manager)


def test_tokens_and_cost_after_a_429_are_those_of_the_one_successful_reply(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    make_tree(db_manager, 0, 0)
    server.enqueue(Fault(429, retry_after=0.01))
    proc = RecursiveDFSProcessor(db_manager, chat, progress=False, prices=PRICES)
    proc.process_node("/root")
    assert server.statuses() == [429, 200]
    messages = server.chat_requests()[-1].body["messages"]  # system and user, as the server
    sent = "\n".join(m["content"] for m in messages)  # counts and answers them
    prompt_tokens, completion_tokens = len(sent.split()), len(answer_for(sent).split())
    assert proc.last_session is not None
    row = proc.last_session.report().iloc[0]
    assert int(row["attempts"]) == 2
    assert (int(row["prompt_tokens"]), int(row["completion_tokens"])) == (
        prompt_tokens,
        completion_tokens,
    )
    assert float(row["cost_usd"]) == pytest.approx(
        cost_usd(prompt_tokens, completion_tokens, PRICES)
    )
    assert proc.last_session.prompt_tokens == prompt_tokens


def test_completion_tokens_are_charged_to_tokens_per_minute() -> None:
    limiter = RateLimiter(None, tokens_per_minute=600)  # 10 tokens a second, 20 at once

    def long_answer(prompt: str) -> Completion:
        return Completion("a long answer", prompt_tokens=1, completion_tokens=600)

    call_llm(long_answer, "p", limiter=limiter, max_retries=0, deadline=None)
    # The bucket owes the 600 completion tokens: the next start waits about a minute.
    began = time.monotonic()
    with pytest.raises(LLMCallError) as info:
        call_llm(long_answer, "p", limiter=limiter, max_retries=0, deadline=began + 1.0)
    assert info.value.reason == "deadline" and info.value.attempts == 0
    assert time.monotonic() - began < 1.0, "the limiter knew at once it could not start"


def test_a_node_whose_retries_run_out_counts_every_attempt(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    make_tree(db_manager, 0, 0)
    server.enqueue(*[Fault(500, retry_after=0.01)] * 3)
    proc = RecursiveDFSProcessor(db_manager, chat, progress=False, max_retries=2)
    proc.process_node("/root")
    assert server.statuses() == [500, 500, 500]
    session = proc.last_session
    assert session is not None and session.counts["failed"] == 1
    row = session.report().iloc[0]
    assert int(row["attempts"]) == 3 and session.retries == 2
    assert "retries exhausted" in str(row["error"]) and "3 attempts" in str(row["error"])
    assert no_leftovers(db_manager)
