"""Issue 14 hardening: cleanup nothing can skip, leftovers judged right, hostile and huge
input, and tests that guard several sessions at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab import queries as q
from blarify_lab.db import GraphDB

from .helpers import (
    QueryRecorder,
    make_tree,
    no_leftovers,
    read_result,
    registry_nodes,
    session_nodes,
    start_session_process,
    wait_for,
    wait_started,
)


def _blocking_llm(
    release: threading.Event, entered: threading.Event | None = None
) -> Callable[[str], str]:
    """An LLM whose every call blocks until ``release`` is set (``entered`` is set on entry)."""

    def llm(prompt: str) -> str:
        if entered is not None:
            entered.set()
        release.wait(60)
        return "late"

    return llm


# ------------------------------------------------------------------------------- the CLI


def _cli(
    env: dict[str, str], *args: str | bytes, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blarify_lab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


SLOW_CLI = textwrap.dedent(
    """
    import runpy, sys, time
    from blarify_lab.llm import ExtractiveSummarizer
    real = ExtractiveSummarizer.get_completion
    def slow(self, prompt):
        time.sleep(0.05)
        return real(self, prompt)
    ExtractiveSummarizer.get_completion = slow
    sys.argv = ["blarify_lab.cli", *sys.argv[1:]]
    runpy.run_module("blarify_lab.cli", run_name="__main__", alter_sys=True)
    """
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_cli_cleans_up_on_sigterm_and_sighup(
    db_manager: GraphDB, db_env: dict[str, str], signum: int, code: int
) -> None:
    """``blarify-lab process`` (its real main(), run as ``__main__``, with a summariser slowed to
    50 ms a node) killed by SIGTERM / SIGHUP once its session is registered exits 143 / 129
    and leaves no session state."""
    make_tree(db_manager, 20, 3)
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "process", "/root", "--workers", "2", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=db_env,
    )
    try:
        assert wait_for(lambda: session_nodes(db_manager) > 0, timeout=30), "session started"
        assert list(bl.list_sessions(db_manager)["state"]) == ["active"]
        child.send_signal(signum)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert child.returncode == code, err
    assert err.strip().splitlines()[-1].startswith("blarify-lab: received SIG"), err
    assert "Traceback" not in err
    assert no_leftovers(db_manager)


def test_cli_restores_the_previous_signal_handlers(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    from blarify_lab.cli import main

    make_tree(db_manager, 2, 1)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    assert main(["sessions", "list", "--uri", db_env["BLARIFY_LAB_URI"]]) == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Infinity"])
def test_cli_rejects_a_timeout_that_is_not_finite(
    db_manager: GraphDB, db_env: dict[str, str], value: str
) -> None:
    make_tree(db_manager, 2, 1)
    with QueryRecorder(db_manager) as sent:
        out = _cli(db_env, "process", "/root", f"--timeout={value}", "--no-progress")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "finite" in out.stderr
    assert sent.queries == []  # (this process sends none; the child's writes would show here:)
    assert no_leftovers(db_manager)


def test_cli_rejects_undecodable_arguments_in_one_line(db_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "blarify_lab.cli", "process", b"/\xff\xfe"],
        capture_output=True,
        env=db_env,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
    assert len(lines) == 1, lines
    assert "not valid text" in lines[0]


# --------------------------------------------------------------------- leftovers judged right


def _fake_registry(
    db: GraphDB,
    *,
    session_id: object | None = None,
    host: str = "elsewhere.invalid",
    pid: object = 4242,
    interval: object = 0.5,
    age_ms: int = 0,
) -> str:
    """A registry node made by hand (as another process or host would leave it); its id."""
    sid = uuid.uuid4().hex if session_id is None else session_id
    db.run_query(
        q.register_session_query(),
        {
            "session_id": sid,
            "root_path": "/root",
            "scope": "graph",
            "relationship_type": "CONTAINS",
            "host": host,
            "pid": pid,
            "pid_start": None,
            "timeout_s": None,
            "heartbeat_interval_s": interval,
        },
    )
    db.run_query(
        "MATCH (s:BLARIFY_SESSION) WHERE s.session_id = $sid "
        "SET s.heartbeat_at = s.heartbeat_at - $age_ms",
        {"sid": sid, "age_ms": age_ms},
    )
    return str(sid)


def _heartbeat_at(db: GraphDB, sid: str) -> int:
    rows = db.run_query(
        "MATCH (s:BLARIFY_SESSION) WHERE s.session_id = $sid RETURN s.heartbeat_at AS h",
        {"sid": sid},
    )
    return int(rows[0]["h"])


def _state(db: GraphDB, sid: str, **kwargs: Any) -> str | None:
    listed = bl.list_sessions(db, **kwargs)
    found = listed.loc[listed["session_id"] == sid, "state"]
    return None if found.empty else str(found.iloc[0])


def test_registry_records_the_process_start_time(db_manager: GraphDB) -> None:
    from blarify_lab.registry import process_start_time

    make_tree(db_manager, 2, 1)
    release = threading.Event()
    proc = RecursiveDFSProcessor(db_manager, _blocking_llm(release), progress=False)
    handle = proc.start("/root")
    try:
        assert wait_for(lambda: registry_nodes(db_manager) == 1)
        s = db_manager.run_query("MATCH (s:BLARIFY_SESSION) RETURN s", {})[0]["s"]
        assert s["pid_start"] == process_start_time(os.getpid()) is not None
    finally:
        handle.cancel()
        release.set()
    assert no_leftovers(db_manager)


def test_a_paused_process_stays_active_and_is_not_cleaned(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    """SIGSTOP well past three heartbeats: still ``active`` (its pid lives, with the start
    time recorded), ``cleanup_leftovers()`` (even with stale_after=0.01) removes nothing;
    after SIGCONT the session finishes cleanly."""
    make_tree(db_manager, 10, 2)
    child = start_session_process(db_env, "/root", delay=0.05, heartbeat=0.2)
    try:
        sid = wait_started(child)
        child.send_signal(signal.SIGSTOP)
        try:
            assert wait_for(
                lambda: bool((bl.list_sessions(db_manager)["heartbeat_age_s"] > 5 * 0.2).all()),
                timeout=10,
            ), "the heartbeat aged past three intervals"
            assert _state(db_manager, sid) == "active"
            assert _state(db_manager, sid, stale_after=0.01) == "active"
            assert bl.cleanup_leftovers(db_manager).empty
            assert bl.cleanup_leftovers(db_manager, stale_after=0.01).empty
            assert registry_nodes(db_manager) == 1 and session_nodes(db_manager) == 31
        finally:
            child.send_signal(signal.SIGCONT)
        assert read_result(child).startswith("/root\n")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert no_leftovers(db_manager)


def test_a_killed_process_is_stale_at_once(db_manager: GraphDB, db_env: dict[str, str]) -> None:
    """On this host a dead pid is stale whatever its heartbeat's age (here a fresh one, with
    a heartbeat interval of 60 s)."""
    make_tree(db_manager, 10, 2)
    child = start_session_process(db_env, "/root", delay=0.3, heartbeat=60.0)
    sid = wait_started(child)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    listed = bl.list_sessions(db_manager)
    assert list(listed["session_id"]) == [sid]
    assert listed.loc[0, "heartbeat_age_s"] < 60
    assert listed.loc[0, "state"] == "stale"
    assert list(bl.cleanup_leftovers(db_manager)["session_id"]) == [sid]
    assert no_leftovers(db_manager)


def test_a_reused_pid_does_not_keep_a_session_active(db_manager: GraphDB) -> None:
    """This host, a live pid (this process) but another start time: stale."""
    sid = _fake_registry(db_manager, host=socket.gethostname(), pid=os.getpid(), interval=60.0)
    db_manager.run_query(
        "MATCH (s:BLARIFY_SESSION) WHERE s.session_id = $sid SET s.pid_start = 1", {"sid": sid}
    )
    assert _state(db_manager, sid) == "stale"
    assert list(bl.cleanup_leftovers(db_manager)["session_id"]) == [sid]
    assert no_leftovers(db_manager)


def test_another_hosts_session_is_judged_by_its_heartbeat(db_manager: GraphDB) -> None:
    """A pid that is alive here means nothing for another host; a heartbeat older than three
    intervals is stale, a fresh one active, and a stale_after shorter than two heartbeats is
    raised to that."""
    fresh = _fake_registry(db_manager, pid=os.getpid(), interval=10.0, age_ms=1_000)
    old = _fake_registry(db_manager, pid=os.getpid(), interval=10.0, age_ms=40_000)
    assert _state(db_manager, fresh) == "active"
    assert _state(db_manager, old) == "stale"
    assert _state(db_manager, fresh, stale_after=0.01) == "active", "never under two beats"
    assert _state(db_manager, old, stale_after="1h") == "active"
    removed = bl.cleanup_leftovers(db_manager, stale_after=0.01)
    assert list(removed["session_id"]) == [old]
    assert _state(db_manager, fresh) == "active"


def _plant_malformed(db: GraphDB, kind: str) -> str:
    """One malformed entry of ``kind``; the session_id list_sessions shows for it."""
    if kind == "legacy status key":
        db.run_query(
            "MATCH (n:FILE) WHERE n.path = '/root/c1' SET n.processing_status_0legacy = 'pending'",
            {},
        )
        return "processing_status_0legacy"
    if kind == "non-numeric heartbeat interval":
        return _fake_registry(db, interval="five seconds")
    if kind == "heartbeat in the future":
        return _fake_registry(db, age_ms=-3_600_000)
    if kind == "registry id not hex":
        _fake_registry(db, session_id="legacy_1")
        return "processing_status_legacy_1"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "legacy status key",
        "non-numeric heartbeat interval",
        "heartbeat in the future",
        "registry id not hex",
    ],
)
def test_a_malformed_entry_is_listed_invalid_and_does_not_block_cleanup(
    db_manager: GraphDB, kind: str
) -> None:
    make_tree(db_manager, 3, 1)
    orphan = uuid.uuid4().hex
    db_manager.run_query(q.initialize_processing_session_query(orphan), {"session_id": orphan})
    bad = _plant_malformed(db_manager, kind)
    listed = bl.list_sessions(db_manager)
    by_id = listed.set_index("session_id")
    assert by_id.loc[orphan, "state"] == "orphaned" and by_id.loc[orphan, "reason"] is None
    assert by_id.loc[bad, "state"] == "invalid"
    assert isinstance(by_id.loc[bad, "reason"], str) and by_id.loc[bad, "reason"]
    removed = bl.cleanup_leftovers(db_manager, force=True)
    assert list(removed["session_id"]) == [orphan]
    assert list(bl.list_sessions(db_manager)["session_id"]) == [bad]
    bl.cleanup_session(db_manager, bad)
    assert bl.list_sessions(db_manager).empty
    assert no_leftovers(db_manager)
    assert not db_manager.run_query(
        "MATCH (n) WHERE n.processing_status_0legacy IS NOT NULL RETURN n", {}
    )


@pytest.mark.parametrize(
    "bad", ["processing_status_", "processing_status_a b", "processing_status_x'"]
)
def test_cleanup_session_validates_a_malformed_key_before_any_query(
    db_manager: GraphDB, bad: str
) -> None:
    with QueryRecorder(db_manager) as sent, pytest.raises(ValueError, match="suffix"):
        bl.cleanup_session(db_manager, bad)
    assert sent.queries == []
