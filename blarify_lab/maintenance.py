"""Looking after the embedded database's data directory: what it holds, compaction, backups.

``database_info()`` says how big the directory is, how many code nodes and descriptions the
graph holds and when the append-only file was last compacted; ``compact()`` compacts it now;
``backup(path)`` writes a consistent copy of the data as a new data directory. Each starts the
directory's server if none runs (and stops it afterwards if nobody else uses it). The command
line's ``blarify-lab db`` calls them.

A backup is a snapshot (Redis ``BGSAVE``: a point in time, taken while other processes may go on
writing) stored as the base of a fresh append-only file. To use it, open it as a data directory
(``connect(data_dir=path)``, or ``BLARIFY_LAB_DATA_DIR=path``); to restore it in place of the
default directory, stop every process that uses that one, then move the backup there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import read_queries as rq
from .aof import aof_sizes, client_for, rewrite
from .embedded import EmbeddedFalkorDB, default_data_dir
from .errors import DatabaseUnavailableError
from .falkordb_backend import FalkorDBManager
from .file_locks import open_lock

if TYPE_CHECKING:
    import redis

__all__ = [
    "BackupResult",
    "CompactionResult",
    "DatabaseInfo",
    "backup",
    "compact",
    "database_info",
]

AOF_DIR = "appendonlydir"
AOF_NAME = "appendonly.aof"  # Redis's appendfilename
BACKUP_LOCK_FILE = "blarify_lab_backup.lock"
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DatabaseInfo:
    """What ``database_info()`` found: the directory's total size in bytes, the append-only
    file's base and incremental parts, the graph's code nodes and stored descriptions, and
    when the append-only file was last compacted (UTC; None if never)."""

    data_dir: Path
    size_bytes: int
    aof_base_bytes: int
    aof_incremental_bytes: int
    nodes: int
    documentation: int
    last_compaction: datetime | None


@dataclass(frozen=True)
class CompactionResult:
    """The directory's size before and after ``compact()``, and how long it took."""

    data_dir: Path
    before_bytes: int
    after_bytes: int
    seconds: float


@dataclass(frozen=True)
class BackupResult:
    """Where ``backup()`` wrote the copy, its size, and the code nodes and descriptions in it."""

    path: Path
    size_bytes: int
    nodes: int
    documentation: int


def directory_size(path: Path) -> int:
    """Bytes in the regular files under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(Path(root) / name).st_size
    return total


def last_compaction(data_dir: Path) -> datetime | None:
    """When the current base of the append-only file was written (its manifest names it)."""
    try:
        manifest = (data_dir / AOF_DIR / f"{AOF_NAME}.manifest").read_text()
    except OSError:
        return None
    for line in manifest.splitlines():
        fields = line.split()
        if "type" in fields and fields[fields.index("type") + 1 :][:1] == ["b"] and fields[:1]:
            with contextlib.suppress(OSError, IndexError):
                stamp = os.stat(data_dir / AOF_DIR / fields[1]).st_mtime
                return datetime.fromtimestamp(stamp, UTC)
    return None


@contextlib.contextmanager
def _served(
    data_dir: str | os.PathLike[str] | None, graph: str
) -> Iterator[tuple[EmbeddedFalkorDB, FalkorDBManager, redis.Redis]]:
    """The directory's server (started if need be), a graph manager and a plain client."""
    server = EmbeddedFalkorDB.acquire(data_dir=data_dir or default_data_dir())
    try:
        with FalkorDBManager(
            host=server.host,
            port=server.port,
            graph=graph,
            password=server.password,
            check_server=server.ensure_ours,
        ) as db:
            server.ensure_ours()
            with client_for(server.host, server.port, server.password, 30.0) as client:
                yield server, db, client
    finally:
        server.release()


def _counts(db: FalkorDBManager) -> tuple[int, int]:
    """The graph's code nodes, and how many of them have stored documentation."""
    row = db.run_query(rq.code_node_counts_query(), {})[0]
    return int(row["nodes"]), int(row["documented"])


def database_info(
    data_dir: str | os.PathLike[str] | None = None, *, graph: str = "blarify"
) -> DatabaseInfo:
    """Size, code nodes, stored descriptions and last compaction of the embedded database in
    ``data_dir`` (default: the one ``connect()`` uses)."""
    with _served(data_dir, graph) as (server, db, client):
        sizes = aof_sizes(client)
        nodes, documentation = _counts(db)
        return DatabaseInfo(
            data_dir=server.data_dir,
            size_bytes=directory_size(server.data_dir),
            aof_base_bytes=sizes.base_bytes,
            aof_incremental_bytes=sizes.incremental_bytes,
            nodes=nodes,
            documentation=documentation,
            last_compaction=last_compaction(server.data_dir),
        )


def compact(
    data_dir: str | os.PathLike[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> CompactionResult:
    """Compact the append-only file of the embedded database in ``data_dir`` now: a new base
    from the graph as it is, no history. Raises ``DatabaseUnavailableError`` if the server
    reports a failure or ``timeout`` seconds pass (the files are then left as they were)."""
    with _served(data_dir, "blarify") as (server, _db, client):
        before = directory_size(server.data_dir)
        start = time.monotonic()
        if not rewrite(client, timeout):
            raise DatabaseUnavailableError(
                f"compacting the embedded database in {server.data_dir} failed or took over "
                f"{timeout:.0f} s; its files are as they were (see {server.data_dir}/falkordb.log)"
            )
        seconds = time.monotonic() - start
        return CompactionResult(server.data_dir, before, directory_size(server.data_dir), seconds)


def _snapshot(client: redis.Redis, timeout: float) -> None:
    """``BGSAVE`` (after a compaction that runs, if one does) and wait until it is on disk."""
    deadline = time.monotonic() + timeout
    before = _saves(client)[0]
    client.bgsave(schedule=True)  # pyright: ignore[reportUnknownMemberType]
    while time.monotonic() < deadline:
        saves, busy, status = _saves(client)
        if saves > before and not busy:
            if status != "ok":
                raise DatabaseUnavailableError("the server could not write the snapshot")
            return
        time.sleep(0.02)
    raise DatabaseUnavailableError(f"the snapshot took over {timeout:.0f} s")


def _saves(client: redis.Redis) -> tuple[int, bool, str]:
    info = dict(client.info("persistence"))  # pyright: ignore[reportUnknownArgumentType]
    busy = bool(info.get("rdb_bgsave_in_progress")) or bool(info.get("aof_rewrite_in_progress"))
    return int(info.get("rdb_saves", 0)), busy, str(info.get("rdb_last_bgsave_status"))


def backup(
    path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> BackupResult:
    """Write a consistent copy of the embedded database in ``data_dir`` to the new directory
    ``path`` (it must not exist, or be empty). ``connect(data_dir=path)`` opens it; moved in
    place of a data directory that no process uses, it restores that one."""
    target = Path(path).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty directory; name a new one")
    with _served(data_dir, "blarify") as (server, _db, client):
        lock = open_lock(server.data_dir / BACKUP_LOCK_FILE)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one snapshot file at a time
            dump = server.data_dir / str(client.config_get("dbfilename")["dbfilename"])
            _snapshot(client, timeout)
            (target / AOF_DIR).mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(target, 0o700)
            base = f"{AOF_NAME}.1.base.rdb"
            shutil.move(dump, target / AOF_DIR / base)
        finally:
            os.close(lock)
    manifest = target / AOF_DIR / f"{AOF_NAME}.manifest"
    manifest.write_text(f"file {base} seq 1 type b\n")
    os.chmod(manifest, 0o600)
    os.chmod(target / AOF_DIR / base, 0o600)
    with _served(target, "blarify") as (_server, db, _client):
        nodes, documentation = _counts(db)
    return BackupResult(target.resolve(), directory_size(target), nodes, documentation)
