"""Leftovers: every session found in the graph, judged, and cleaned on request.

A session whose registry names this host is judged by its process (alive, with the start time
recorded at registration: active, however old its heartbeat); one from another host by its
heartbeat. Entries that cannot be judged (a malformed status key, a registry node with a
non-numeric field or a heartbeat in the future) are listed ``invalid`` with the reason, never
removed automatically, and removed on request by ``cleanup_session``. Stored documentation is
never touched.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from . import queries as q
from .db import GraphDB
from .detection import schema_named
from .errors import SessionNotFoundError
from .processes import local_process_alive
from .registry import (
    CLEANUP_BATCH_SIZE,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    remove_in_batches,
    remove_session_traces,
    running_here,
)
from .schema import GraphSchema

__all__ = [
    "SESSION_COLUMNS",
    "cleanup_leftovers",
    "cleanup_session",
    "list_sessions",
    "parse_duration",
]

STALE_AFTER_HEARTBEATS = 3
MIN_STALE_HEARTBEATS = 2  # a stale_after shorter than two heartbeats is raised to that
FUTURE_HEARTBEAT_SLACK_S = 5.0  # a heartbeat further ahead of the database's clock is invalid
STATE_COUNTS = ["pending", "queued", "running", "in_progress", "completed", "failed"]
SESSION_COLUMNS = [
    "session_id",
    "state",
    "root_path",
    "tenant",
    "started_at",
    "heartbeat_age_s",
    "host",
    "pid",
    *STATE_COUNTS,
    "nodes",
    "reason",
]


def parse_duration(value: float | int | str | timedelta | None) -> float | None:
    """Seconds from 90, 90.0, '90s', '15m', '2h', '1d' or a timedelta; None stays None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", value)
        if m is None:
            raise ValueError(f"invalid duration {value!r}: use seconds or e.g. '90s', '15m', '2h'")
        scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
        seconds = float(m[1]) * scale
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def _ms_to_datetime(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, UTC)


def _number(value: object) -> float | None:
    """A finite int or float (not a bool) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _judge_registry(
    s: dict[str, Any], now: int, threshold: float | None
) -> tuple[str, float | None, str | None]:
    """``(state, heartbeat age in seconds, reason)`` of one registry node; ``reason`` is set
    for ``invalid`` entries only."""
    sid = s.get("session_id")
    if not isinstance(sid, str) or q.SESSION_ID_PATTERN.fullmatch(sid) is None:
        return "invalid", None, f"registry session id {sid!r} is not 32 lowercase hex characters"
    raw_interval = s.get("heartbeat_interval_s")
    interval = DEFAULT_HEARTBEAT_INTERVAL_S if raw_interval is None else _number(raw_interval)
    if interval is None or interval <= 0:
        return "invalid", None, f"heartbeat interval {raw_interval!r} is not a number > 0"
    beat = _number(s.get("heartbeat_at"))
    if beat is None:
        return "invalid", None, f"heartbeat {s.get('heartbeat_at')!r} is not a timestamp"
    age = (now - beat) / 1000.0
    if age < -FUTURE_HEARTBEAT_SLACK_S:
        return "invalid", age, f"heartbeat is {-age:.0f} s in the future"
    for field in ("pid", "started_at", "pid_start"):
        value = s.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return "invalid", age, f"{field} {value!r} is not a whole number"
    host, pid, start = s.get("host"), s.get("pid"), s.get("pid_start")
    if host == socket.gethostname() and isinstance(pid, int):
        alive = local_process_alive(pid, start if isinstance(start, int) else None)
        if alive and pid == os.getpid():  # this very process: does it still run the session?
            alive = running_here(sid)
        if alive is not None:  # this host's process table decides, whatever the heartbeat
            return ("active" if alive else "stale"), age, None
    floor = MIN_STALE_HEARTBEATS * interval  # never stale faster than the session beats
    limit = STALE_AFTER_HEARTBEATS * interval if threshold is None else max(threshold, floor)
    return ("active" if age <= limit else "stale"), age, None


def list_sessions(
    db: GraphDB,
    stale_after: float | str | timedelta | None = None,
    *,
    schema: GraphSchema | str | None = None,
) -> pd.DataFrame:
    """One row per session found in the graph, from registry nodes and status keys alike.

    ``tenant`` is the tenant a session keeps to (blarify graphs). With a ``schema`` that
    names a tenant, the registered sessions of other tenants are left out (a session known
    only by its status keys is always shown: it cannot be told apart).

    ``state`` is ``active`` while the session runs: on this host, while the process that
    registered it is alive (paused or busy alike, whatever its heartbeat) and, when that is
    the calling process, still runs the session (one whose cleanup failed is stale at once;
    from another process of this host it stays active until that process ends); from another host,
    while its heartbeat is no older than ``stale_after`` (default three of the session's own
    heartbeat intervals, and never under two). ``stale`` is a session that stopped,
    ``orphaned`` nodes carrying a session's status with no registry entry, ``invalid`` an
    entry that cannot be judged (``reason`` says why; ``cleanup_session(db, session_id)``
    removes it). ``in_progress`` counts the nodes claimed in the graph: ``running`` of them
    are with a worker (as of the last heartbeat), ``queued`` wait for one.
    """
    threshold = parse_duration(stale_after)
    rows: dict[str, dict[str, Any]] = {}
    # Status keys first: a session registers before it marks its nodes, so any key read here
    # belongs to a session already registered; reading the registry first would show a
    # session that starts between the two reads as orphaned, and clean up a live session.
    keys = db.run_query(q.list_status_keys_query(), {})
    for rec in db.run_query(q.list_registered_sessions_query(), {}):
        s: dict[str, Any] = dict(rec["session"])
        state, age, reason = _judge_registry(s, int(rec["now"]), threshold)
        sid = str(s.get("session_id"))
        if state == "invalid" and q.SESSION_ID_PATTERN.fullmatch(sid) is None:
            sid = q.STATUS_PREFIX + sid  # the name cleanup_session takes for it
        started = _number(s.get("started_at"))
        rows[sid] = {
            "session_id": sid,
            "state": state,
            "root_path": s.get("root_path"),
            "tenant": s.get("tenant"),
            "started_at": _ms_to_datetime(started) if state != "invalid" else None,
            "heartbeat_age_s": age,
            "host": s.get("host"),
            "pid": s.get("pid") if isinstance(s.get("pid"), int) else None,
            "running": int(_number(s.get("running")) or 0) if state == "active" else 0,
            "reason": reason,
        }
    for rec in keys:
        key = str(rec["key"])
        sid = key[len(q.STATUS_PREFIX) :]
        if q.SESSION_ID_PATTERN.fullmatch(sid) is None:
            sid = key
            row = rows.setdefault(
                sid,
                {
                    "session_id": sid,
                    "state": "invalid",
                    "reason": f"status key {key!r} is not named after a session id",
                },
            )
        else:
            row = rows.setdefault(sid, {"session_id": sid, "state": "orphaned"})
        status = str(rec["status"])
        if status not in q.NODE_STATUSES:
            row["state"] = "invalid"
            row["reason"] = row.get("reason") or f"status value {status!r} is unknown"
            continue
        row[status] = row.get(status, 0) + int(rec["count"])
    frame = pd.DataFrame(list(rows.values()), columns=SESSION_COLUMNS)
    for status in STATE_COUNTS:
        frame[status] = frame[status].fillna(0).astype("int64")
    active = frame["state"] == "active"  # what nobody runs any more is neither
    frame["running"] = frame[["running", "in_progress"]].min(axis=1).where(active, 0)
    frame["queued"] = (frame["in_progress"] - frame["running"]).where(active, 0)
    for column in ("running", "queued"):
        frame[column] = frame[column].astype("int64")
    frame["nodes"] = frame[["pending", "in_progress", "completed", "failed"]].sum(axis=1)
    frame["nodes"] = frame["nodes"].astype("int64")
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    frame["heartbeat_age_s"] = frame["heartbeat_age_s"].astype("float64")
    frame["reason"] = frame["reason"].astype("object").where(frame["reason"].notna(), None)
    chosen = schema_named(schema)
    if chosen is not None and chosen.tenant_label is not None:
        other = frame["tenant"].notna() & (frame["tenant"] != chosen.tenant_label)
        frame = frame.loc[~other]
    frame = frame.sort_values(["state", "session_id"], kind="stable")
    return frame.reset_index(drop=True)


def cleanup_session(db: GraphDB, session_id: str) -> int:
    """Remove one session's traces (status properties and registry node); returns nodes cleaned.

    ``session_id`` is a session id (32 hex characters) or, for an ``invalid`` entry not named
    after one, the ``processing_status_<suffix>`` name ``list_sessions`` shows for it
    (``<suffix>``: letters, digits, underscores): its property is removed from every node and
    the registry nodes whose ``session_id`` is ``<suffix>`` are deleted. Validated before any
    query runs. Removing a session that is still running makes that run fail; check
    ``list_sessions`` first. Stored documentation is never touched.

    An id with no trace at all (no node carries its property, no registry node has it)
    raises ``SessionNotFoundError``, a ``LookupError``: a typo is never reported as a
    cleanup of 0 nodes. A registered session that marked no node returns 0.
    """
    if isinstance(session_id, str) and session_id.startswith(q.STATUS_PREFIX):
        suffix = session_id[len(q.STATUS_PREFIX) :]
        if q.SESSION_ID_PATTERN.fullmatch(suffix) is None:
            q.validate_status_suffix(suffix)
            return _cleaned(db, session_id, suffix, lambda: _remove_malformed(db, suffix))
        session_id = suffix
    sid = q.validate_session_id(session_id)
    return _cleaned(db, sid, sid, lambda: remove_session_traces(db, sid))


def _cleaned(db: GraphDB, shown: str, registry_id: str, remove: Callable[[], int]) -> int:
    """``remove()``, or ``SessionNotFoundError`` when it found nothing to remove."""
    rows = db.run_query(q.list_registered_sessions_query(), {})
    registered = any(dict(r["session"]).get("session_id") == registry_id for r in rows)
    removed = remove()
    if removed == 0 and not registered:
        raise SessionNotFoundError(shown)
    return removed


def _remove_malformed(db: GraphDB, suffix: str, batch_size: int = CLEANUP_BATCH_SIZE) -> int:
    """Remove the malformed status key ``processing_status_<suffix>`` and registry nodes
    whose session id is ``suffix``."""
    return remove_in_batches(db, q.cleanup_status_key_query(suffix), suffix, {}, batch_size)


def cleanup_leftovers(
    db: GraphDB,
    stale_after: float | str | timedelta | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> pd.DataFrame:
    """Remove stale and orphaned sessions (active ones too with ``force=True``).

    ``invalid`` entries are never removed here, so that one malformed entry cannot stop the
    others from being cleaned; ``cleanup_session`` removes them on request.

    Returns the sessions removed, or with ``dry_run=True`` those that would be, with an
    ``action`` column and the number of nodes cleaned (or that would be).
    """
    sessions = list_sessions(db, stale_after=stale_after)
    removable = ["stale", "orphaned", "active"] if force else ["stale", "orphaned"]
    keep = sessions["state"].isin(removable)
    chosen = sessions.loc[keep].copy()
    chosen["action"] = "would remove" if dry_run else "removed"
    cleaned: list[int] = []
    for sid in chosen["session_id"]:
        cleaned.append(-1 if dry_run else cleanup_session(db, str(sid)))
    chosen["nodes_cleaned"] = pd.Series(cleaned, index=chosen.index, dtype="int64")
    if dry_run:
        chosen["nodes_cleaned"] = chosen["nodes"]
    return chosen.reset_index(drop=True)
