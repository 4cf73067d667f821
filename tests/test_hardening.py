"""Issue 14 hardening: cleanup nothing can skip, leftovers judged right, hostile and huge
input, and tests that guard several sessions at once."""

from __future__ import annotations

import linecache
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab import queries as q
from blarify_lab.db import GraphDB
from blarify_lab.documentation import export_markdown
from blarify_lab.prompts import parse_prompt

from .helpers import (
    QueryRecorder,
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
    if kind == "string pid":
        return _fake_registry(db, pid="4242")
    field, value = {
        "non-numeric heartbeat": ("heartbeat_at", "yesterday"),
        "string started_at": ("started_at", "2026-11-30T04:00:00Z"),
        "numeric-looking string heartbeat": ("heartbeat_at", "1764475200000"),
    }[kind]
    sid = _fake_registry(db)
    db.run_query(
        f"MATCH (s:BLARIFY_SESSION) WHERE s.session_id = $sid SET s.{field} = $value",
        {"sid": sid, "value": value},
    )
    return sid


@pytest.mark.parametrize(
    "kind",
    [
        "legacy status key",
        "non-numeric heartbeat interval",
        "heartbeat in the future",
        "registry id not hex",
        "non-numeric heartbeat",
        "numeric-looking string heartbeat",
        "string pid",
        "string started_at",
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


# ------------------------------------------------------------------- cleanup nothing can skip


class CallbackError(Exception):
    pass


def test_a_progress_callback_raising_mid_run_leaves_nothing(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 2)
    calls: list[int] = []

    def progress(session: bl.ProcessingSession) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise CallbackError("third call")

    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), max_workers=2, progress=progress)
    with pytest.raises(CallbackError, match="third call"):
        proc.process_node("/root")
    assert len(calls) >= 3
    assert proc.last_session is not None and proc.last_session.status == "failed"
    assert no_leftovers(db_manager)


def test_a_progress_callback_raising_when_the_bar_closes_leaves_nothing(
    db_manager: GraphDB,
) -> None:
    make_tree(db_manager, 10, 2)

    def progress(session: bl.ProcessingSession) -> None:
        if session.done:
            raise CallbackError("final call")

    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), max_workers=2, progress=progress)
    with pytest.raises(CallbackError, match="final call"):
        proc.process_node("/root")
    assert no_leftovers(db_manager)


def test_an_llm_raising_keyboard_interrupt_leaves_nothing(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 2)
    calls: list[int] = []

    def llm(prompt: str) -> str:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return "doc"

    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        proc.process_node("/root")
    assert proc.last_session is not None and proc.last_session.status == "cancelled"
    assert no_leftovers(db_manager)


def test_an_interrupt_landing_while_the_pool_shuts_down_leaves_nothing(
    db_manager: GraphDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_thread.interrupt_main`` is called as the worker pool joins its first worker after
    every node is done, so the KeyboardInterrupt is raised inside the pool's shutdown."""
    import _thread
    import re

    make_tree(db_manager, 10, 2)
    real_join = threading.Thread.join
    worker = re.compile(r"blarify-[0-9a-f]{8}-\d+")
    landed: list[str] = []

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        if worker.fullmatch(self.name) and not landed:
            landed.append(self.name)
            _thread.interrupt_main()
        real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), max_workers=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        proc.process_node("/root")
    assert len(landed) == 1
    assert no_leftovers(db_manager)
    assert proc.last_session is not None
    workers_of_session = f"blarify-{proc.last_session.id[:8]}"
    assert wait_for(  # no idle worker is left waiting for work
        lambda: not any(t.name.startswith(workers_of_session) for t in threading.enumerate())
    )


# ------------------------------------------------------------------------ hostile input

HOSTILE_PATHS = ["/root\x00", "/ro\x00ot/c1", "/root/\ud800", "/\udcff\udcfe"]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_hostile_path_is_a_value_error_before_any_query(db_manager: GraphDB, path: str) -> None:
    make_tree(db_manager, 2, 1)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
    with QueryRecorder(db_manager) as sent:
        with pytest.raises(ValueError, match=r"NUL|surrogate"):
            proc.process_node(path)
        with pytest.raises(ValueError, match=r"NUL|surrogate"):
            proc.start(path)
        with pytest.raises(ValueError, match=r"NUL|surrogate"):
            bl.documentation(db_manager, path)
        with pytest.raises(ValueError, match=r"NUL|surrogate"):
            export_markdown(db_manager, path, "/nonexistent-never-written")
    assert sent.queries == []
    assert no_leftovers(db_manager)


@pytest.mark.parametrize("prefix", ["/pkg\x00", "/pkg\ud800"])
def test_a_hostile_load_prefix_is_a_value_error_before_any_query(
    db_manager: GraphDB, tmp_path: Any, prefix: str
) -> None:
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    with QueryRecorder(db_manager) as sent, pytest.raises(ValueError, match=r"NUL|surrogate"):
        bl.load_python_package(db_manager, tmp_path, prefix=prefix)
    assert sent.queries == []


def test_nul_and_lone_surrogates_in_answers_never_fail_the_session(db_manager: GraphDB) -> None:
    """Some nodes are answered with a NUL byte, others with a lone surrogate: the session
    completes, every description is stored (with U+FFFD in their place) and returned."""
    make_tree(db_manager, 6, 2)

    def llm(prompt: str) -> str:
        path = parse_prompt(prompt).path
        if path.endswith("g1"):
            return f"doc\x00 of {path}"
        if path.endswith("g2"):
            return f"doc\ud800 of {path}"
        return f"doc of {path}"

    proc = RecursiveDFSProcessor(db_manager, llm, progress=False)
    text = proc.process_node("/root")
    session = proc.last_session
    assert session is not None and session.status == "completed"
    assert session.counts["failed"] == 0 and session.counts["completed"] == 19
    assert text.startswith("/root\n") and "\x00" not in text
    text.encode("utf-8")  # no lone surrogate is returned
    frame = bl.documentation(db_manager, "/root")
    docs: dict[str, str] = dict(zip(frame["path"], frame["description"], strict=True))
    assert len(docs) == 19
    assert docs["/root/c1/g1"] == "doc\ufffd of /root/c1/g1"
    g2 = docs["/root/c1/g2"]
    assert g2.startswith("doc\ufffd") and g2.endswith(" of /root/c1/g2")
    assert all("\x00" not in d for d in docs.values())
    assert no_leftovers(db_manager)


# ------------------------------------------------------------------------ non-finite numbers


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e308, float("-inf"), -1.0, 0.0])
@pytest.mark.parametrize("name", ["timeout", "heartbeat_interval"])
def test_non_finite_or_absurd_seconds_are_refused_before_any_query(
    db_manager: GraphDB, name: str, value: float
) -> None:
    make_tree(db_manager, 2, 1)
    with QueryRecorder(db_manager) as sent:
        with pytest.raises(ValueError, match=name):
            kwargs: dict[str, Any] = {name: value}
            RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False, **kwargs)
        if name == "timeout":
            proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
            with pytest.raises(ValueError, match="timeout"):
                proc.process_node("/root", timeout=value)
            with pytest.raises(ValueError, match="timeout"):
                proc.start("/root", timeout=value)
    assert sent.queries == []
    assert no_leftovers(db_manager)


def test_a_huge_answer_for_every_node_keeps_memory_bounded(db_env: dict[str, str]) -> None:
    """A 5 MB answer for each node of a 301-node graph (1.5 GB in all): the process's peak
    RSS grows by less than 300 MB and every stored description is cut with the marker."""
    code = textwrap.dedent(
        """
        import resource, sys
        import blarify_lab as bl
        from tests.helpers import make_tree, no_leftovers
        db = bl.connect()
        make_tree(db, 100, 2)
        def llm(prompt):  # a fresh 5 MB string per call, as a real client returns
            return prompt[:40] + "x" * (5_000_000 - 40)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        proc = bl.RecursiveDFSProcessor(db, llm, max_workers=4, progress=False)
        text = proc.process_node("/root")
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        docs = bl.documentation(db, "/root")
        lengths = docs["description"].str.len()
        cut = docs["description"].str.contains("[... cut at 20,000 of 5,000,000 characters]",
                                               regex=False)
        print("RESULT", len(docs), int(lengths.max()), bool(cut.all()), round(grown_mb),
              no_leftovers(db), len(text) < 100_000, flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=db_env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    n, longest, all_cut, grown_mb, clean, short = line.split()[1:]
    assert int(n) == 301
    assert int(longest) < 20_100 and all_cut == "True"
    assert int(grown_mb) < 300, f"peak RSS grew by {grown_mb} MB"
    assert clean == "True" and short == "True"


# ------------------------------------------------------------ several sessions at once


def test_one_sessions_heartbeat_does_not_refresh_another(db_manager: GraphDB) -> None:
    """A dead session's heartbeat keeps ageing while another session beats (the heartbeat
    query is filtered by session): it turns stale and is removed."""
    make_tree(db_manager, 4, 1)
    dead = _fake_registry(db_manager, interval=0.1, age_ms=0)
    dead_beat = _heartbeat_at(db_manager, dead)
    release, entered = threading.Event(), threading.Event()
    proc = RecursiveDFSProcessor(
        db_manager, _blocking_llm(release, entered), progress=False, heartbeat_interval=0.05
    )
    handle = proc.start("/root")
    try:
        assert entered.wait(10)
        live = handle.session_id
        first = _heartbeat_at(db_manager, live)
        assert wait_for(lambda: _heartbeat_at(db_manager, live) > first + 300, timeout=10), (
            "the live session beat for more than 300 ms"
        )
        assert _heartbeat_at(db_manager, dead) == dead_beat, "the dead one was not refreshed"
        assert _state(db_manager, dead) == "stale" and _state(db_manager, live) == "active"
        assert list(bl.cleanup_leftovers(db_manager)["session_id"]) == [dead]
    finally:
        handle.cancel()
        release.set()
    assert no_leftovers(db_manager)


def _waiting_for_a_completion(session_id: str) -> bool:
    """Whether the session's thread is blocked in the scheduler's wait for a finished node
    (its innermost Python frame is a ``.get(`` call in the scheduler's loop)."""
    threads = [t for t in threading.enumerate() if t.name == f"blarify-session-{session_id[:8]}"]
    if not threads or threads[0].ident is None:
        return False
    frame = sys._current_frames().get(threads[0].ident)
    if frame is None or frame.f_code.co_name not in ("schedule", "_schedule"):
        return False
    return ".get(" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)


def test_cancel_wakes_a_scheduler_blocked_on_a_hung_llm(db_manager: GraphDB) -> None:
    make_tree(db_manager, 4, 1)
    release, entered = threading.Event(), threading.Event()
    proc = RecursiveDFSProcessor(
        db_manager, _blocking_llm(release, entered), max_workers=2, progress=False
    )
    handle = proc.start("/root")
    try:
        assert entered.wait(10)
        assert wait_for(lambda: _waiting_for_a_completion(handle.session_id)), (
            "the scheduler blocks waiting for a worker"
        )
        start = time.monotonic()
        assert handle.cancel() is True
        took = time.monotonic() - start
        assert took < 2.0, f"cancel took {took:.1f} s"
        assert handle.session.status == "cancelled"
        assert no_leftovers(db_manager)
    finally:
        release.set()
    with pytest.raises(bl.SessionCancelled):
        handle.result(5)


def test_a_short_session_ending_leaves_a_long_one_active(db_manager: GraphDB) -> None:
    """The registry delete is filtered by session: a short session's cleanup keeps a long
    running one registered and ``active`` (not turned into an orphan)."""
    make_tree(db_manager, 4, 1)
    release, entered = threading.Event(), threading.Event()
    long_proc = RecursiveDFSProcessor(
        db_manager, _blocking_llm(release, entered), progress=False, heartbeat_interval=0.2
    )
    handle = long_proc.start("/root")
    try:
        assert entered.wait(10)
        short = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
        assert short.process_node("/root/c2", scope="subtree").startswith("/root/c2\n")
        listed = bl.list_sessions(db_manager)
        assert list(listed["session_id"]) == [handle.session_id]
        assert list(listed["state"]) == ["active"]
        assert registry_nodes(db_manager) == 1
        assert bl.cleanup_leftovers(db_manager).empty
    finally:
        handle.cancel()
        release.set()
    assert no_leftovers(db_manager)
