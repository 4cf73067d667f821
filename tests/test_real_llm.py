"""A real model through the processor: the real ``openai`` client against a real
OpenAI-compatible server on 127.0.0.1 (``tests/llm_server.py``), never a mock of HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import blarify_lab as bl
from benchmarks.pacing import max_in_window
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.errors import BudgetExceededError
from blarify_lab.openai_chat import OpenAIChat

from .helpers import QueryRecorder, make_tree, no_leftovers
from .llm_server import Fault, LLMTestServer

pytest.importorskip("openai")

KEY = "sk-blarify-processor-0xFEEDFACE-never-print"
PRICES = {"prompt": 2.0, "completion": 8.0}  # USD per million tokens


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer(api_key=KEY) as running:
        yield running


@pytest.fixture
def chat(server: LLMTestServer) -> Iterator[OpenAIChat]:
    with OpenAIChat("test-model", base_url=server.base_url, api_key=KEY, timeout=5) as llm:
        yield llm


def _proc(db: GraphDB, llm: object, **kwargs: object) -> RecursiveDFSProcessor:
    options: dict[str, object] = {"max_workers": 4, "progress": False, "scope": "subtree"}
    options.update(kwargs)
    return RecursiveDFSProcessor(db, llm, **options)  # type: ignore[arg-type]


def test_every_node_is_documented_through_the_server_with_its_usage_and_cost(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    total = make_tree(db_manager, 4, 2)
    proc = _proc(db_manager, chat, prices=PRICES)
    text = proc.process_node("/root")
    assert text.startswith("/root\nDocuments /root.")
    assert len(server.chat_requests()) == total
    session = proc.last_session
    assert session is not None
    report = session.report()
    assert bool((report["attempts"] == 1).all()) and not bool(report["tokens_estimated"].any())
    assert bool((report["prompt_tokens"] > 0).all())
    assert bool((report["completion_tokens"] > 0).all())
    expected = (report["prompt_tokens"] * 2.0 + report["completion_tokens"] * 8.0) / 1e6
    assert report["cost_usd"].to_numpy() == pytest.approx(expected.to_numpy())
    summary = session.summary().iloc[0]
    assert summary["prompt_tokens"] == report["prompt_tokens"].sum()
    assert summary["completion_tokens"] == report["completion_tokens"].sum()
    assert summary["cost_usd"] == pytest.approx(report["cost_usd"].sum())
    assert (summary["llm_calls"], summary["retries"]) == (total, 0)
    assert no_leftovers(db_manager)


def test_a_429_then_success_counts_two_attempts_and_a_401_is_not_retried(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/a.py'})", {})
    server.enqueue(Fault(429, retry_after=0.05))
    proc = _proc(db_manager, chat)
    assert proc.process_node("/a.py") == "/a.py\nDocuments /a.py."
    session = proc.last_session
    assert session is not None
    assert session.report()["attempts"].tolist() == [2]
    assert session.summary().iloc[0]["retries"] == 1
    assert server.statuses() == [429, 200]

    server.reset()
    wrong = OpenAIChat("test-model", base_url=server.base_url, api_key="sk-wrong-key-0xBAD")
    proc = _proc(db_manager, wrong)
    text = proc.process_node("/a.py", force=True)
    assert len(server.chat_requests()) == 1, "a 401 is not retried"
    assert "[ERROR]" in text and "HTTP 401" in text
    assert "sk-wrong-key-0xBAD" not in text
    session = proc.last_session
    assert session is not None and session.counts["failed"] == 1
    error = str(session.report()["error"].iloc[0])
    assert "401" in error and "sk-wrong-key-0xBAD" not in error
    assert no_leftovers(db_manager)


def test_transient_server_errors_are_retried_and_the_node_succeeds(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/b.py'})", {})
    server.enqueue(Fault(503, retry_after=0.01), Fault(500, retry_after=0.01))
    proc = _proc(db_manager, chat)
    assert proc.process_node("/b.py").startswith("/b.py\nDocuments")
    assert server.statuses() == [503, 500, 200]
    assert proc.last_session is not None
    assert proc.last_session.report()["attempts"].tolist() == [3]


def test_the_sessions_rate_limit_is_respected_by_all_workers(db_manager: GraphDB) -> None:
    rpm = 600  # 10 per second: the server refuses an 11th+1 in any one-second window
    with LLMTestServer(api_key=KEY, requests_per_minute=rpm) as limited:
        total = make_tree(db_manager, 14, 1)  # 29 nodes
        llm = OpenAIChat("test-model", base_url=limited.base_url, api_key=KEY, timeout=5)
        proc = _proc(db_manager, llm, max_workers=8, requests_per_minute=rpm)
        proc.process_node("/root")
        session = proc.last_session
        assert session is not None and session.counts["completed"] == total
        assert 429 not in limited.statuses(), "paced: the server never had to refuse"
        starts = sorted(r.t for r in limited.chat_requests())
        assert max_in_window(starts) <= rpm / 60 + 1
        assert starts[-1] - starts[0] >= (total - 11) * 60 / rpm, "spread, not a burst"


def test_estimate_sends_no_request_and_writes_nothing(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    total = make_tree(db_manager, 3, 2)
    proc = _proc(db_manager, chat, prices=PRICES)
    with QueryRecorder(db_manager) as recorder:
        before = proc.estimate("/root")
    assert recorder.writes == [] and server.requests == []
    row = before.iloc[0]
    assert list(before.columns) == [
        "nodes",
        "cached",
        "llm_calls",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "wall_s",
        "completion_tokens_basis",
        "wall_s_basis",
    ]
    assert (row["nodes"], row["cached"], row["llm_calls"]) == (total, 0, total)
    assert row["prompt_tokens"] > 0 and row["cost_usd"] > 0
    proc.process_node("/root")
    after = proc.estimate("/root").iloc[0]
    assert (after["cached"], after["llm_calls"], after["prompt_tokens"]) == (total, 0, 0)
    db_manager.run_query("MATCH (n) WHERE n.path = '/root/c2/g1' SET n.text = 'def g(): 2'", {})
    changed = proc.estimate("/root").iloc[0]
    # the edited leaf, then what lies above it (its new description is unknown in advance)
    assert (changed["llm_calls"], changed["cached"]) == (3, total - 3)
    with pytest.raises(bl.NodeNotFoundError):
        proc.estimate("/nowhere")


def test_the_budget_stops_the_session_and_a_rerun_resumes(
    db_manager: GraphDB, server: LLMTestServer, chat: OpenAIChat
) -> None:
    total = make_tree(db_manager, 10, 2)  # 31 nodes
    proc = _proc(db_manager, chat, max_workers=2, prices=PRICES, max_cost_usd=0.0005)
    with pytest.raises(BudgetExceededError) as info:
        proc.process_node("/root")
    assert info.value.spent_usd >= 0.0005
    session = proc.last_session
    assert session is not None and session.status == "failed"
    done = session.counts["completed"]
    assert 0 < done < total
    stored = bl.documentation(db_manager, "/root")
    assert len(stored) == done, "what was done is stored"
    assert no_leftovers(db_manager)
    calls_before = len(server.chat_requests())
    assert calls_before == session.llm_calls
    resumed = _proc(db_manager, chat, prices=PRICES)
    resumed.process_node("/root")
    assert len(server.chat_requests()) - calls_before == total - done
    assert resumed.last_session is not None and resumed.last_session.cached == done


def test_the_key_never_leaks(
    db_manager: GraphDB,
    server: LLMTestServer,
    chat: OpenAIChat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_tree(db_manager, 2, 1)
    server.enqueue(Fault(429, retry_after=0.01), Fault(400, message="bad request"))
    caplog.set_level(logging.DEBUG)
    proc = _proc(db_manager, chat)
    text = proc.process_node("/root")
    session = proc.last_session
    assert session is not None
    shown = [
        text,
        repr(proc),
        repr(chat),
        repr(session),
        session.report().to_string(),
        session.summary().to_string(),
        session._repr_html_(),  # pyright: ignore[reportPrivateUsage]
        caplog.text,
    ]
    assert not any(KEY in item for item in shown)
    assert server.chat_requests()[0].authorization == f"Bearer {KEY}", "the key was sent"


def test_cli_estimates_then_runs_a_real_model(
    db_manager: GraphDB,
    db_env: dict[str, str],
    server: LLMTestServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from blarify_lab.cli import main

    if "neo4j" in db_env["BLARIFY_LAB_URI"] or "bolt" in db_env["BLARIFY_LAB_URI"]:
        pytest.skip("the CLI is pointed at the graph by URI; done on FalkorDB")
    total = make_tree(db_manager, 3, 1)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    args = ["process", "/root", "--uri", db_env["BLARIFY_LAB_URI"], "--no-progress"]
    model = ["--model", "test-model", "--base-url", server.base_url, "--prices", "2,8"]
    assert main([*args, *model, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "llm_calls" in out and "cost_usd" in out and server.requests == []
    assert "wall_s" in out and "wall_s_basis" in out, "the dry run prints the forecast"
    assert main([*args, *model]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("/root\nDocuments /root.")
    assert f"{total} LLM calls" in captured.err and "$0.0" in captured.err
    assert len(server.chat_requests()) == total
    assert main([*args, *model]) == 0, "a second run"
    assert f"0 LLM calls, {total} cached" in capsys.readouterr().err
    assert len(server.chat_requests()) == total, "costs nothing"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0xBAD")
    assert main([*args, *model, "--force", "--timeout", "2m"]) == 1, "failed nodes fail the run"
    err = capsys.readouterr().err
    assert f"{total} of {total} nodes failed" in err and "401" in err
    assert "sk-wrong-0xBAD" not in err
    assert main([*args, "--base-url", server.base_url]) == 2
    assert "--base-url needs --model" in capsys.readouterr().err
    assert main([*args, "--max-cost", "1"]) == 2
    assert KEY not in capsys.readouterr().err
