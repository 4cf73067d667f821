"""Session lifecycle, isolation, interrupts, and leftover sessions, on every backend."""

from __future__ import annotations

import _thread
import signal
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest

import blarify_lab as bl
from benchmarks import baseline_queries as baseline
from blarify_lab import RecursiveDFSProcessor
from blarify_lab import queries as q
from blarify_lab.db import GraphDB
from blarify_lab.registry import remove_session_traces

from .helpers import (
    InThreads,
    QueryRecorder,
    graph_fingerprint,
    make_tree,
    no_leftovers,
    read_result,
    registry_nodes,
    session_nodes,
    slow_llm,
    start_session_process,
    wait_for,
    wait_started,
)

# ------------------------------------------------------------------------------ lifecycle


def test_registry_records_a_running_session_and_its_heartbeat(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 2)
    proc = RecursiveDFSProcessor(
        db_manager, slow_llm(0.05), max_workers=2, timeout=60, progress=False,
        heartbeat_interval=0.2,
    )  # fmt: skip
    handle = proc.start("/root")
    assert wait_for(lambda: registry_nodes(db_manager) == 1)
    first = db_manager.run_query("MATCH (s:BLARIFY_SESSION) RETURN s", {})[0]["s"]
    assert first["session_id"] == handle.session_id
    assert first["root_path"] == "/root"
    assert first["pid"] > 0 and first["host"]
    assert first["timeout_s"] == 60
    assert first["started_at"] > 0

    def beat() -> int:
        return int(
            db_manager.run_query("MATCH (s:BLARIFY_SESSION) RETURN s", {})[0]["s"]["heartbeat_at"]
        )

    assert wait_for(lambda: beat() > first["heartbeat_at"]), "the heartbeat is refreshed"
    rows = db_manager.run_query(
        "MATCH (s:BLARIFY_SESSION) RETURN [k IN keys(s) WHERE k STARTS WITH 'processing_status_'] AS ks",
        {},
    )
    assert rows[0]["ks"] == []
    listed = bl.list_sessions(db_manager)
    assert list(listed["session_id"]) == [handle.session_id]
    assert listed.loc[0, "state"] == "active"
    assert listed.loc[0, "nodes"] == 31
    handle.result(timeout=60)
    assert no_leftovers(db_manager)
    assert bl.list_sessions(db_manager).empty


def test_last_session_statuses(db_manager: GraphDB) -> None:
    make_tree(db_manager, 4, 1)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
    proc.process_node("/root")
    s = proc.last_session
    assert s is not None and s.status == "completed" and s.finished_at is not None
    assert s.counts == {
        "pending": 0,
        "queued": 0,
        "running": 0,
        "completed": 9,
        "failed": 0,
        "cycles": 0,
    }
    assert len(s.session_id) == 32 and s.finished_at >= s.started_at

    timed = RecursiveDFSProcessor(
        db_manager,
        slow_llm(1.0),
        max_workers=1,
        progress=False,
        timeout=0.3,
        save_documentation=False,
    )
    with pytest.raises(TimeoutError, match="timed out"):
        timed.process_node("/root")
    assert timed.last_session is not None and timed.last_session.status == "timed_out"
    assert timed.last_session.session_id != s.session_id
    assert no_leftovers(db_manager)


def test_exception_from_the_database_layer_fails_the_session_and_cleans_up(
    db_manager: GraphDB,
) -> None:
    make_tree(db_manager, 3, 1)
    calls = {"n": 0}

    def flaky(query: str, params: Mapping[str, Any]) -> None:
        if "$claim" in query and params["completed"]:  # mid-session, not the start
            calls["n"] += 1
            raise bl.DatabaseUnavailableError("simulated: connection reset")

    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
    with (
        QueryRecorder(db_manager, flaky),
        pytest.raises(bl.DatabaseUnavailableError, match="simulated"),
    ):
        proc.process_node("/root")
    assert calls["n"] >= 1
    assert proc.last_session is not None and proc.last_session.status == "failed"
    assert no_leftovers(db_manager)


def test_cleanup_failure_is_raised_with_the_way_to_clean_later(db_manager: GraphDB) -> None:
    make_tree(db_manager, 3, 1)

    def no_cleanup(query: str, params: Mapping[str, Any]) -> None:
        if "REMOVE" in query:
            raise bl.DatabaseUnavailableError("simulated: database gone")

    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
    with QueryRecorder(db_manager, no_cleanup), pytest.raises(bl.SessionCleanupError) as info:
        proc.process_node("/root")
    sid = info.value.session_id
    assert sid in str(info.value)
    assert f"cleanup_session(db, '{sid}')" in str(info.value)
    assert f"blarify-lab sessions cleanup --session {sid}" in str(info.value)
    listed = bl.list_sessions(db_manager)
    assert list(listed["session_id"]) == [sid]
    assert bl.cleanup_session(db_manager, sid) == 7
    assert no_leftovers(db_manager)


def test_keyboard_interrupt_cleans_up_and_reraises(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 2)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.2), max_workers=2, progress=False)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        proc.process_node("/root")
    assert time.monotonic() - start < 5
    assert proc.last_session is not None and proc.last_session.status == "cancelled"
    assert no_leftovers(db_manager)


def test_cancel_stops_at_once_and_cleans_up(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 2)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.2), max_workers=2, progress=False)
    handle = proc.start("/root")
    assert wait_for(lambda: handle.session.counts["completed"] > 0)
    start = time.monotonic()
    assert handle.cancel() is True
    assert time.monotonic() - start < 1.0
    assert handle.done() and handle.session.status == "cancelled"
    with pytest.raises(bl.SessionCancelled):
        handle.result()
    assert no_leftovers(db_manager)
    assert handle.cancel() is False


def test_timeout_with_an_llm_that_never_returns(db_manager: GraphDB) -> None:
    make_tree(db_manager, 3, 1)
    never = threading.Event()

    def hang(prompt: str) -> str:
        never.wait(60)
        return "too late"

    proc = RecursiveDFSProcessor(db_manager, hang, max_workers=2, timeout=1, progress=False)
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            proc.process_node("/root")
        assert time.monotonic() - start < 3
        assert no_leftovers(db_manager)
    finally:
        never.set()
    assert proc.last_session is not None
    workers = f"blarify-{proc.last_session.id[:8]}"
    assert wait_for(  # the abandoned calls return now and their workers end; nothing is written
        lambda: not any(t.name.startswith(workers) for t in threading.enumerate())
    )
    assert no_leftovers(db_manager)


# ------------------------------------------------------------------------------ isolation


def test_sessions_in_threads_run_at_once_and_stay_isolated(db_manager: GraphDB) -> None:
    make_tree(db_manager, 8, 2)
    alone = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False).process_node("/root")
    seen_sessions: set[int] = set()

    def watch(session: bl.ProcessingSession) -> None:
        seen_sessions.add(len(bl.list_sessions(db_manager)))

    procs = [
        RecursiveDFSProcessor(db_manager, slow_llm(0.02), max_workers=3, progress=watch)
        for _ in range(3)
    ]
    results = InThreads(procs, "/root").join(60)
    assert max(seen_sessions) >= 2, "the sessions really overlapped"
    assert results == [alone] * 3
    assert len({p.last_session.session_id for p in procs if p.last_session}) == 3
    assert no_leftovers(db_manager)


def test_one_processor_shared_by_two_threads(db_manager: GraphDB) -> None:
    make_tree(db_manager, 6, 2)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.01), max_workers=2, progress=False)
    alone = proc.process_node("/root")
    h1, h2 = proc.start("/root"), proc.start("/root/c3", scope="subtree")
    assert h1.result(60) == alone
    assert h2.result(60).startswith("/root/c3\n")
    assert h2.session.total == 3
    assert no_leftovers(db_manager)


def test_sessions_in_separate_processes_stay_isolated(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    make_tree(db_manager, 8, 2)
    alone = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False).process_node("/root")
    children = [start_session_process(db_env, "/root", delay=0.02) for _ in range(2)]
    sids = [wait_started(c) for c in children]
    here = RecursiveDFSProcessor(db_manager, slow_llm(0.02), max_workers=2, progress=False)
    mine = here.process_node("/root")
    texts = [read_result(c) for c in children]
    assert len(set(sids)) == 2
    assert texts == [alone, alone] and mine == alone
    assert no_leftovers(db_manager)


# ------------------------------------------------------------------------------ leftovers


def test_killed_process_is_listed_stale_and_cleaned_without_damage(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    make_tree(db_manager, 10, 3)
    before = graph_fingerprint(db_manager)
    child = start_session_process(db_env, "/root", delay=0.3, heartbeat=0.3)
    sid = wait_started(child)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    listed = bl.list_sessions(db_manager)
    assert list(listed["session_id"]) == [sid]
    assert listed.loc[0, "pid"] == child.pid
    assert listed.loc[0, "nodes"] == 41
    assert wait_for(
        lambda: bl.list_sessions(db_manager).loc[0, "state"] == "stale", timeout=3 * 0.3 + 2
    ), "stale within three heartbeat intervals"
    assert graph_fingerprint(db_manager) != before, "the leftover is really in the graph"
    dry = bl.cleanup_leftovers(db_manager, dry_run=True)
    assert list(dry["session_id"]) == [sid] and list(dry["action"]) == ["would remove"]
    assert session_nodes(db_manager) == 41
    removed = bl.cleanup_leftovers(db_manager)
    assert list(removed["session_id"]) == [sid]
    assert removed.loc[0, "nodes_cleaned"] == 41
    assert graph_fingerprint(db_manager) == before
    assert bl.list_sessions(db_manager).empty


def test_orphaned_status_keys_are_found_and_cleaned(db_manager: GraphDB) -> None:
    make_tree(db_manager, 3, 1)
    before = graph_fingerprint(db_manager)
    sid = uuid.uuid4().hex
    db_manager.run_query(q.initialize_processing_session_query(sid), {"session_id": sid})
    db_manager.run_query(
        baseline.mark_processing_status_query(sid),
        {"session_id": sid, "node_path": "/root/c1", "status": "completed"},
    )
    listed = bl.list_sessions(db_manager)
    row = listed.iloc[0]
    assert (row["session_id"], row["state"]) == (sid, "orphaned")
    assert (row["pending"], row["completed"], row["nodes"]) == (6, 1, 7)
    removed = bl.cleanup_leftovers(db_manager)
    assert list(removed["state"]) == ["orphaned"]
    assert graph_fingerprint(db_manager) == before


def test_active_sessions_are_kept_unless_forced(db_manager: GraphDB) -> None:
    make_tree(db_manager, 6, 2)
    proc = RecursiveDFSProcessor(
        db_manager, slow_llm(0.1), max_workers=1, progress=False, heartbeat_interval=0.2
    )
    handle = proc.start("/root")
    try:
        assert wait_for(lambda: handle.session.counts["completed"] > 0)
        assert bl.cleanup_leftovers(db_manager).empty
        assert registry_nodes(db_manager) == 1
        dry = bl.cleanup_leftovers(db_manager, dry_run=True, force=True)
        assert list(dry["session_id"]) == [handle.session_id]
        assert registry_nodes(db_manager) == 1
        # a live session of this host stays active however short the threshold (issue 14)
        assert list(bl.list_sessions(db_manager, stale_after=0)["state"]) == ["active"]
        assert bl.cleanup_leftovers(db_manager, stale_after=0).empty
    finally:
        handle.cancel()
    assert no_leftovers(db_manager)


@pytest.mark.parametrize(
    "bad", ["", "abc", "0123456789abcdef0123456789abcde}", "0123456789abcdef0123456789abcd'1", None]
)
def test_cleanup_session_validates_before_any_query(db_manager: GraphDB, bad: Any) -> None:
    with QueryRecorder(db_manager) as sent, pytest.raises(ValueError, match="session id"):
        bl.cleanup_session(db_manager, bad)
    assert sent.queries == []


def test_big_session_is_cleaned_in_batches(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "UNWIND range(1, 25000) AS i CREATE (:FILE {path: '/f' + toString(i), keep: i})", {}
    )
    sid = uuid.uuid4().hex
    db_manager.run_query(q.initialize_processing_session_query(sid), {"session_id": sid})
    with QueryRecorder(db_manager) as sent:
        assert remove_session_traces(db_manager, sid, batch_size=10_000) == 25_000
    removed = [r[0]["removed"] for r in sent.results if r and "removed" in r[0]]
    assert removed == [10_000, 10_000, 5_000]
    assert session_nodes(db_manager) == 0
    total = db_manager.run_query("MATCH (n:FILE) RETURN sum(n.keep) AS s", {})[0]["s"]
    assert total == 25000 * 25001 // 2


def test_list_sessions_frame_shape_and_durations(db_manager: GraphDB) -> None:
    frame = bl.list_sessions(db_manager)
    assert isinstance(frame, pd.DataFrame) and frame.empty
    assert list(frame.columns)[:3] == ["session_id", "state", "root_path"]
    with pytest.raises(ValueError, match="duration"):
        bl.list_sessions(db_manager, stale_after="soon")
    assert bl.list_sessions(db_manager, stale_after="15m").empty


def test_cleanup_session_of_an_unknown_id_is_no_such_session(db_manager: GraphDB) -> None:
    """A well-formed id with no trace anywhere raises (a LookupError); a registered session
    that marked nothing is cleaned up (0 nodes) and then is unknown."""
    make_tree(db_manager, 2, 1)
    unknown = uuid.uuid4().hex
    with pytest.raises(bl.SessionNotFoundError, match=f"no such session {unknown}") as caught:
        bl.cleanup_session(db_manager, unknown)
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, bl.BlarifyLabError)
    with pytest.raises(bl.SessionNotFoundError):
        bl.cleanup_session(db_manager, "processing_status_never_there")
    sid = uuid.uuid4().hex
    db_manager.run_query(
        q.register_session_query(),
        {
            "session_id": sid,
            "root_path": "/root",
            "scope": "subtree",
            "relationship_type": "CONTAINS",
            "host": "elsewhere.invalid",
            "pid": 1,
            "pid_start": None,
            "timeout_s": None,
            "heartbeat_interval_s": 1.0,
        },
    )
    assert bl.cleanup_session(db_manager, sid) == 0
    assert no_leftovers(db_manager)
    with pytest.raises(bl.SessionNotFoundError):
        bl.cleanup_session(db_manager, sid)
