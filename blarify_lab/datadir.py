"""An embedded server's data directory: its files, their owner and modes, and temporary ones.

The directory is 0700 and every file in it 0600; a directory or state file owned by another user
is refused. The password is generated once per directory. A temporary directory left behind by
a killed process is removed by the next ``sweep_temporary_dirs()``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import DatabaseUnavailableError
from .file_locks import lock_is_free, open_lock, try_flock
from .processes import local_process_alive

__all__ = [
    "LOCK_FILE",
    "LOG_FILE",
    "PASSWORD_FILE",
    "SERVER_LOCK_FILE",
    "STATE_FILE",
    "TEMP_PREFIX",
    "USERS_LOCK_FILE",
    "default_data_dir",
    "make_temporary_dir",
    "prepare_dir",
    "read_password",
    "read_state",
    "server_is_ours",
    "sweep_temporary_dirs",
    "write_private",
]

STATE_FILE = "blarify_lab_server.json"
PASSWORD_FILE = "blarify_lab_password"
LOCK_FILE = "blarify_lab_start.lock"  # held by whoever starts (or waits for) a server
SERVER_LOCK_FILE = "blarify_lab_server.lock"  # held by the supervisor and its redis-server
USERS_LOCK_FILE = "blarify_lab_users.lock"  # shared by every process using the server
LOG_FILE = "falkordb.log"
TEMP_PREFIX = "blarify_lab_falkordb_"


def default_data_dir() -> Path:
    """``$BLARIFY_LAB_DATA_DIR``, else ``$XDG_CACHE_HOME/blarify_lab/falkordb`` (``~/.cache``)."""
    explicit = os.environ.get("BLARIFY_LAB_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "blarify_lab" / "falkordb"


def _check_owner(path: Path, what: str) -> os.stat_result:
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise DatabaseUnavailableError(
            f"refusing the embedded database's {what} {path}: it belongs to uid {st.st_uid}, "
            f"not to you (uid {os.getuid()}); use a data directory of your own"
        )
    return st


def prepare_dir(base: Path) -> Path:
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


def read_password(data_dir: Path, *, create: bool) -> str:
    """The directory's server password (generated into a 0600 file first if ``create``)."""
    path = data_dir / PASSWORD_FILE
    if create:
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    _check_owner(path, "password file")
    return path.read_text().strip()


def read_state(data_dir: Path) -> dict[str, int] | None:
    """The running server's ``pid``, ``supervisor_pid`` and ``port``, the server's start time
    ``pid_start`` (``/proc/<pid>/stat`` field 22; 0 if not recorded), ``ready`` (1 once it
    answers, 0 while it loads its data) and ``loaded_perc`` (how far that is); None if
    unreadable."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        state = {k: int(raw[k]) for k in ("pid", "supervisor_pid", "port")}
        state["pid_start"] = int(raw.get("pid_start", 0))
        state["ready"] = int(raw.get("ready", 1))
        state["loaded_perc"] = int(raw.get("loaded_perc", 0))
        return state
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def server_is_ours(data_dir: Path, state: dict[str, int] | None) -> bool:
    """True when the server that ``state`` names still serves ``data_dir``: its supervisor holds
    the server lock and the process ``pid`` is the one that was started (same start time), so
    that whatever else now listens on the port is never sent the directory's password."""
    if state is None:
        return False
    alive = local_process_alive(state["pid"], state["pid_start"] or None)
    if not (alive or (alive is None and not state["pid_start"])):  # gone, a zombie, another
        return False  # (a state file without a start time: an older version's, pid only)
    return not lock_is_free(data_dir / SERVER_LOCK_FILE)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, as a 0600 file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def make_temporary_dir() -> tuple[Path, int]:
    """A new temporary data directory and a shared lock on its users file, already held.

    The users file is locked under another name and renamed into place, so that a sweep by
    another process never sees an unlocked users file in a directory that is being set up.
    """
    base = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    fd = open_lock(base / (USERS_LOCK_FILE + ".new"))
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.rename(base / (USERS_LOCK_FILE + ".new"), base / USERS_LOCK_FILE)
    return base, fd


def sweep_temporary_dirs(parent: Path | None = None) -> list[Path]:
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
            users = open_lock(path / USERS_LOCK_FILE, create=False)
        except OSError:  # not ours, or not one of this version's (no users file): leave it
            continue
        try:
            if try_flock(users, fcntl.LOCK_EX) and lock_is_free(path / SERVER_LOCK_FILE):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        finally:
            os.close(users)
    return removed
