"""The session registry in the graph: register, heartbeat, list, and clean up sessions.

A running session has one ``BLARIFY_SESSION`` node whose heartbeat a daemon thread refreshes,
and a ``processing_status_<session_id>`` property on every node of its scope.
``session_lifecycle`` is the whole life of one session as a context manager: register, beat,
run the body, then remove every trace, however the body ends. What a killed process leaves
behind is found by ``list_sessions`` and removed by ``cleanup_session`` / ``cleanup_leftovers``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from . import queries as q
from .db import GraphDB
from .deadline import query_deadline
from .errors import SessionCleanupError
from .session import ProcessingSession, describe_error, status_for

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "Heartbeat",
    "cleanup_leftovers",
    "cleanup_session",
    "list_sessions",
    "remove_session_traces",
    "session_lifecycle",
]

log = logging.getLogger("blarify_lab")

DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
STALE_AFTER_HEARTBEATS = 3
CLEANUP_BATCH_SIZE = 10_000
HEARTBEAT_JOIN_S = 1.0  # a beat stuck on a dead database is not waited for longer
STATE_COUNTS = ["pending", "queued", "running", "in_progress", "completed", "failed"]
SESSION_COLUMNS = [
    "session_id",
    "state",
    "root_path",
    "started_at",
    "heartbeat_age_s",
    "host",
    "pid",
    *STATE_COUNTS,
    "nodes",
]


# ----------------------------------------------------------------- one session's lifecycle


class Heartbeat:
    """Refreshes a session's registry node every ``interval`` seconds from a daemon thread."""

    def __init__(self, db: GraphDB, session: ProcessingSession, interval: float) -> None:
        self._db = db
        self._session = session
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"blarify-heartbeat-{session.session_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=min(self._interval, HEARTBEAT_JOIN_S))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            c = self._session.counts
            try:
                self._db.run_query(
                    q.heartbeat_query(),
                    {
                        "session_id": self._session.session_id,
                        "completed": c["completed"],
                        "failed": c["failed"],
                        "running": c["running"],
                        "queued": c["queued"],
                        "total": self._session.total,
                    },
                )
            except Exception as err:  # a missed beat is not fatal; the session goes on
                log.warning("heartbeat of session %s failed: %s", self._session.session_id, err)


def register_session(db: GraphDB, session: ProcessingSession, *, heartbeat_interval: float) -> None:
    """Create the session's registry node (host, pid and heartbeat interval included)."""
    db.run_query(
        q.register_session_query(),
        {
            "session_id": session.session_id,
            "root_path": session.root_path,
            "scope": session.scope,
            "relationship_type": session.relationship_type,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "timeout_s": session.timeout,
            "heartbeat_interval_s": heartbeat_interval,
        },
    )


@contextmanager
def session_lifecycle(
    db: GraphDB,
    session: ProcessingSession,
    *,
    heartbeat_interval: float,
    cleanup_timeout: float | None = None,
) -> Iterator[ProcessingSession]:
    """Register ``session``, keep its heartbeat, run the body, then remove every trace.

    The session ends ``completed`` when the body returns, else with the status its exception
    calls for (set by the body first if it already ended the session). A failure to clean up
    is raised as ``SessionCleanupError`` when nothing else is, else added to the exception in
    flight as a note; the first error is the one raised. With ``cleanup_timeout`` the
    cleanup's queries get that many seconds of their own, whatever deadline the body had.
    """
    try:
        register_session(db, session, heartbeat_interval=heartbeat_interval)
    except BaseException as err:
        session.end(status_for(err), describe_error(err))
        raise
    heartbeat = Heartbeat(db, session, heartbeat_interval)
    try:
        heartbeat.start()
        yield session
    except BaseException as err:
        heartbeat.stop()
        session.end(status_for(err), describe_error(err))
        _clean(db, session.session_id, err, cleanup_timeout)
        raise
    heartbeat.stop()
    session.end("completed")
    _clean(db, session.session_id, None, cleanup_timeout)


def _clean(
    db: GraphDB, session_id: str, in_flight: BaseException | None, timeout: float | None
) -> None:
    """Remove a session's traces; an interrupt landing meanwhile waits until they are gone."""
    interrupted: BaseException | None = None
    for _attempt in range(3):
        try:
            if timeout is None:
                remove_session_traces(db, session_id)
            else:
                with query_deadline(time.monotonic() + timeout, override=True):
                    remove_session_traces(db, session_id)
            break
        except KeyboardInterrupt as err:  # finish the cleanup first, then honour it
            interrupted = interrupted or err
        except Exception as err:
            failure = SessionCleanupError(session_id, err)
            log.error("%s", failure)
            if in_flight is None and interrupted is None:
                raise failure from err
            (in_flight or interrupted or err).add_note(str(failure))
            break
    if interrupted is not None and in_flight is None:
        raise interrupted


def remove_session_traces(
    db: GraphDB, session_id: str, batch_size: int = CLEANUP_BATCH_SIZE
) -> int:
    """Remove a session's status property from every node, then its registry node.

    Works in batches of ``batch_size`` nodes so that no transaction grows with the graph.
    Returns how many nodes carried the session's property. Documentation is never touched.
    """
    q.validate_session_id(session_id)
    params: dict[str, Any] = {"session_id": session_id, "batch_size": batch_size}
    query = q.cleanup_session_query(session_id, batched=True)
    removed = 0
    while True:
        rows = db.run_query(query, params)
        n = int(rows[0]["removed"]) if rows else 0
        removed += n
        if n < batch_size:
            break
    db.run_query(q.delete_session_registry_query(), {"session_id": session_id})
    return removed


# -------------------------------------------------------------------- leftovers: list / clean


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


def list_sessions(db: GraphDB, stale_after: float | str | timedelta | None = None) -> pd.DataFrame:
    """One row per session found in the graph, from registry nodes and status keys alike.

    ``state`` is ``active`` while the heartbeat is fresh, ``stale`` once it is older than
    ``stale_after`` (default: three of the session's own heartbeat intervals), and ``orphaned``
    when nodes carry a session's status with no registry entry. ``in_progress`` counts the
    nodes claimed in the graph: ``running`` of them are with a worker (as of the last
    heartbeat), ``queued`` wait for one.
    """
    threshold = parse_duration(stale_after)
    rows: dict[str, dict[str, Any]] = {}
    for rec in db.run_query(q.list_registered_sessions_query(), {}):
        s: dict[str, Any] = rec["session"]
        sid = str(s.get("session_id", ""))
        now = int(rec["now"])
        beat = s.get("heartbeat_at")
        age = (now - int(beat)) / 1000.0 if beat is not None else None
        interval = float(s.get("heartbeat_interval_s") or DEFAULT_HEARTBEAT_INTERVAL_S)
        limit = threshold if threshold is not None else STALE_AFTER_HEARTBEATS * interval
        state = "active" if age is not None and age <= limit else "stale"
        rows[sid] = {
            "session_id": sid,
            "state": state,
            "root_path": s.get("root_path"),
            "started_at": _ms_to_datetime(s.get("started_at")),
            "heartbeat_age_s": age,
            "host": s.get("host"),
            "pid": s.get("pid"),
            "running": int(s.get("running") or 0) if state == "active" else 0,
        }
    for rec in db.run_query(q.list_status_keys_query(), {}):
        sid = str(rec["key"])[len(q.STATUS_PREFIX) :]
        row = rows.setdefault(sid, {"session_id": sid, "state": "orphaned"})
        status = str(rec["status"])
        row[status] = row.get(status, 0) + int(rec["count"])
    frame = pd.DataFrame(list(rows.values()), columns=SESSION_COLUMNS)
    for status in STATE_COUNTS:
        frame[status] = frame[status].fillna(0).astype("int64")
    frame["running"] = frame[["running", "in_progress"]].min(axis=1)
    frame["queued"] = frame["in_progress"] - frame["running"]
    frame["nodes"] = frame[["pending", "in_progress", "completed", "failed"]].sum(axis=1)
    frame["nodes"] = frame["nodes"].astype("int64")
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    frame["heartbeat_age_s"] = frame["heartbeat_age_s"].astype("float64")
    frame = frame.sort_values(["state", "session_id"], kind="stable")
    return frame.reset_index(drop=True)


def cleanup_session(db: GraphDB, session_id: str) -> int:
    """Remove one session's traces (status properties and registry node); returns nodes cleaned.

    The id is validated before any query runs. Removing a session that is still running makes
    that run fail; check ``list_sessions`` first. Stored documentation is never touched.
    """
    q.validate_session_id(session_id)
    return remove_session_traces(db, session_id)


def cleanup_leftovers(
    db: GraphDB,
    stale_after: float | str | timedelta | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> pd.DataFrame:
    """Remove stale and orphaned sessions (active ones too with ``force=True``).

    Returns the sessions removed, or with ``dry_run=True`` those that would be, with an
    ``action`` column and, when removed, the number of nodes cleaned.
    """
    sessions = list_sessions(db, stale_after=stale_after)
    keep = pd.Series(True, index=sessions.index) if force else sessions["state"] != "active"
    chosen = sessions.loc[keep].copy()
    chosen["action"] = "would remove" if dry_run else "removed"
    cleaned: list[int] = []
    for sid in chosen["session_id"]:
        cleaned.append(0 if dry_run else cleanup_session(db, str(sid)))
    chosen["nodes_cleaned"] = pd.Series(cleaned, index=chosen.index, dtype="int64")
    return chosen.reset_index(drop=True)
