"""The embedded server's append-only file: how big it is, and compacting it.

Redis keeps the data as a *base* (an RDB snapshot of the graph: ``aof-use-rdb-preamble yes``)
plus an *incremental* part (every write since the base). Starting the server loads the base and
replays the incremental part, so an incremental part that only grows (session marks and registry
entries written and removed again by every run) makes every start slower. Compacting
(``BGREWRITEAOF``) writes a new base from the graph as it is and drops the incremental part: what
the server loads is then bounded by the graph, not by its history.

The server compacts by itself when the incremental part outgrows the base (and is over
``AUTO_REWRITE_MIN_SIZE``); the supervisor compacts before it stops the server for its last user
when the incremental part is an ``EXIT_RATIO``-th of the base or more (bounded by
``EXIT_COMPACT_TIMEOUT_S``: a compaction cut short leaves the files as they were);
``blarify_lab.maintenance.compact()`` compacts on request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

__all__ = [
    "AUTO_REWRITE_MIN_SIZE",
    "EXIT_COMPACT_TIMEOUT_S",
    "EXIT_RATIO",
    "AofSizes",
    "aof_sizes",
    "client_for",
    "compact_if_grown",
    "rewrite",
]

AUTO_REWRITE_MIN_SIZE = "1mb"  # Redis's default (64 MB) is far bigger than most graphs
EXIT_RATIO = 8  # at exit, compact when incremental * EXIT_RATIO >= base
EXIT_COMPACT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class AofSizes:
    """Bytes in the base and the incremental part, and whether a compaction runs right now."""

    base_bytes: int
    incremental_bytes: int
    rewriting: bool


def client_for(host: str, port: int, password: str, timeout: float) -> redis.Redis:
    """A plain Redis client for the server's own commands (INFO, BGREWRITEAOF, BGSAVE)."""
    import redis

    return redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    )


def _persistence(client: redis.Redis) -> dict[str, object]:
    return dict(client.info("persistence"))  # pyright: ignore[reportUnknownArgumentType]


def _int(info: dict[str, object], key: str) -> int:
    value = info.get(key, 0)
    return int(value) if isinstance(value, int | str) else 0


def aof_sizes(client: redis.Redis) -> AofSizes:
    """The append-only file's sizes as the server reports them (``INFO persistence``)."""
    info = _persistence(client)
    base = _int(info, "aof_base_size")
    current = _int(info, "aof_current_size")
    busy = bool(_int(info, "aof_rewrite_in_progress") or _int(info, "aof_rewrite_scheduled"))
    return AofSizes(base_bytes=base, incremental_bytes=max(current - base, 0), rewriting=busy)


def rewrite(client: redis.Redis, timeout: float) -> bool:
    """Compact now (``BGREWRITEAOF``) and wait for it: True once a compaction started after this
    call has finished well, False if it failed or ``timeout`` seconds passed first."""
    import redis as redis_module

    deadline = time.monotonic() + timeout
    before = _int(_persistence(client), "aof_rewrites")
    while True:
        try:
            client.bgrewriteaof()
            break
        except redis_module.ResponseError as err:  # one already runs: ours starts after it
            if "in progress" not in str(err) or time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
    while time.monotonic() < deadline:
        info = _persistence(client)
        busy = _int(info, "aof_rewrite_in_progress") or _int(info, "aof_rewrite_scheduled")
        if not busy and _int(info, "aof_rewrites") > before:
            return info.get("aof_last_bgrewrite_status") == "ok"
        time.sleep(0.01)
    return False


def compact_if_grown(host: str, port: int, password: str, timeout: float) -> bool | None:
    """Compact if the incremental part is an ``EXIT_RATIO``-th of the base or more: True when
    done, False when it failed or took too long, None when there was nothing worth doing."""
    import redis as redis_module

    try:
        with client_for(host, port, password, min(timeout, 5.0)) as client:
            sizes = aof_sizes(client)
            if sizes.incremental_bytes == 0 or (
                sizes.incremental_bytes * EXIT_RATIO < sizes.base_bytes
            ):
                return None
            return rewrite(client, timeout)
    except (redis_module.RedisError, OSError):
        return False
