"""Bounded LLM calls: the budget holds whatever max_workers, a timeout bounds the whole
attempt, a server's long Retry-After is capped, and an estimate needs no API key. Real
databases, the real ``openai`` client against real local servers (``tests/llm_server.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blarify_lab import RecursiveDFSProcessor
from blarify_lab.budget import CallBudget
from blarify_lab.cli import main
from blarify_lab.db import GraphDB
from blarify_lab.errors import BudgetExceededError, LLMCallError
from blarify_lab.openai_chat import OpenAIChat
from blarify_lab.prompt_kinds import GENERIC_PROMPTS
from blarify_lab.retries import call_with_retries

from .helpers import make_tree, no_leftovers
from .llm_server import Fault, LLMTestServer

openai = pytest.importorskip("openai")

KEY = "sk-blarify-bounds-0xDEADBEEF-never-print"


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer(api_key=KEY) as running:
        yield running


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# --- the budget ----------------------------------------------------------------------------


def test_the_budget_holds_with_many_workers_and_slow_replies(
    db_manager: GraphDB, server: LLMTestServer
) -> None:
    make_tree(db_manager, 60, 0)
    server.set_delay(0.3)
    # The server counts a prompt's words as its tokens: about 20 with the generic prompt (no
    # system message), so about $1 a call.
    prices = {"prompt": 1e6 / 20, "completion": 0.0}
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=10) as llm:
        proc = RecursiveDFSProcessor(
            db_manager,
            llm,
            max_workers=32,
            progress=False,
            scope="subtree",
            prices=prices,
            max_cost_usd=3.0,
            prompts=GENERIC_PROMPTS,
        )
        with pytest.raises(BudgetExceededError):
            proc.process_node("/root")
    session = proc.last_session
    assert session is not None and session.cost_usd is not None
    one_call = max(float(c) for c in session.report()["cost_usd"].dropna())
    assert 0.5 < one_call < 2.0, "the prices make a call cost about $1"
    print(f"spent ${session.cost_usd:.2f} of $3 in {session.llm_calls} calls of <= ${one_call:.2f}")
    assert session.cost_usd <= 3.0 + one_call, (session.cost_usd, one_call)
    assert len(server.chat_requests()) == session.llm_calls <= 5
    assert no_leftovers(db_manager)


def test_a_call_budget_reserves_before_a_call_and_settles_after() -> None:
    budget = CallBudget(2.0)
    first = budget.reserve(1.5)
    assert first is not None and first == 1.5 and budget.reserved_usd == 1.5
    started = threading.Event()

    def second_call() -> None:
        budget.reserve(1.5)  # waits: the first call's real cost is not known yet
        started.set()

    waiter = threading.Thread(target=second_call, daemon=True)
    waiter.start()
    assert not started.wait(0.3), "a second call must wait for the first to settle"
    budget.settle(first, 1.0)
    assert started.wait(5)
    assert budget.spent_usd == 1.0 and budget.reserved_usd == 1.5
    budget.settle(1.5, 1.2)
    assert budget.reserve(0.1) is None, "spent: nothing more starts"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Exception, match="cancelled"):
        CallBudget(5.0).reserve(1.0, cancel=cancel)


# --- bounded waits -------------------------------------------------------------------------


def test_the_timeout_bounds_the_whole_attempt_against_a_trickling_server(
    server: LLMTestServer,
) -> None:
    server.set_trickle(0.05)  # about 300 bytes: 15 s for the whole answer
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=1.0) as llm:
        began = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            llm.complete("## Node\nPath: /pkg/slow.py")
        took = time.monotonic() - began
        assert took < 2.0, f"one attempt took {took:.1f} s with timeout=1"
        server.set_trickle(0.0)
        assert llm.complete("## Node\nPath: /pkg/fast.py").text == "Documents /pkg/fast.py."


def test_a_trickled_answer_within_the_timeout_still_arrives(server: LLMTestServer) -> None:
    server.enqueue(Fault(200, trickle_s=0.001))
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=10) as llm:
        assert llm.complete("## Node\nPath: /pkg/a.py").text == "Documents /pkg/a.py."


def test_a_retry_after_beyond_the_cap_fails_at_once_with_the_reason(
    server: LLMTestServer,
) -> None:
    server.enqueue(Fault(429, retry_after=3600))
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=5) as llm:
        began = time.monotonic()
        with pytest.raises(LLMCallError) as info:
            call_with_retries(lambda: llm.complete("Path: /a"), max_retries=4, deadline=None)
        assert time.monotonic() - began < 5
    assert info.value.reason == "retry_wait_too_long" and info.value.attempts == 1
    assert "max_retry_wait_s" in str(info.value)
    server.enqueue(Fault(503, retry_after=0.5))
    with (
        OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=5) as llm,
        pytest.raises(LLMCallError) as info,
    ):
        call_with_retries(
            lambda: llm.complete("Path: /a"), max_retries=4, deadline=None, max_retry_wait_s=0.2
        )
    assert info.value.reason == "retry_wait_too_long"


def test_a_session_with_no_timeout_fails_the_node_instead_of_waiting_an_hour(
    db_manager: GraphDB, server: LLMTestServer
) -> None:
    total = make_tree(db_manager, 0, 0)
    server.enqueue(Fault(429, retry_after=3600))
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=5) as llm:
        proc = RecursiveDFSProcessor(db_manager, llm, progress=False, max_retry_wait_s=30)
        handle = proc.start("/root")
        try:
            handle.result(timeout=20)
        except TimeoutError:
            handle.cancel()
            raise
    session = proc.last_session
    assert session is not None and session.counts["failed"] == total == 1
    error = str(session.report()["error"].iloc[0])
    assert "3600" in error and "max_retry_wait_s=30" in error, error
    assert no_leftovers(db_manager)
    with pytest.raises(ValueError, match="max_retry_wait_s"):
        RecursiveDFSProcessor(db_manager, llm, max_retry_wait_s=float("inf"))


# --- an estimate needs no key --------------------------------------------------------------


def test_a_dry_run_with_a_model_needs_no_api_key(
    falkordb_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"dry_{tmp_path.name[-8:]}".replace("-", "_")
    db = falkordb_server.manager(name)
    try:
        total = make_tree(db, 3, 1)
        code = main(
            [
                "process",
                "/root",
                "--uri",
                f"{falkordb_server.uri}/{name}",
                "--model",
                "gpt-4o-mini",
                "--dry-run",
                "--no-progress",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "llm_calls" in out.out and str(total) in out.out
        assert no_leftovers(db)
    finally:
        db.delete_graph()
        db.close()


def test_openai_chat_can_cap_the_wait_for_its_server(
    db_manager: GraphDB, server: LLMTestServer
) -> None:
    make_tree(db_manager, 0, 0)
    server.enqueue(Fault(429, retry_after=5))
    with OpenAIChat(
        "test-model", base_url=server.base_url, api_key=KEY, timeout=5, max_retry_wait_s=1
    ) as llm:
        proc = RecursiveDFSProcessor(db_manager, llm, progress=False)  # its own cap: 60 s
        began = time.monotonic()
        proc.process_node("/root")
        assert time.monotonic() - began < 4
    session = proc.last_session
    assert session is not None and session.counts["failed"] == 1
    assert "max_retry_wait_s=1" in str(session.report()["error"].iloc[0])
    assert server.statuses() == [429]
    with pytest.raises(ValueError, match="max_retry_wait_s"):
        OpenAIChat("m", base_url=server.base_url, max_retry_wait_s=-1)
