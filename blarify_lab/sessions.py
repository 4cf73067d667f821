"""Processing sessions: what one run is, its registry entry and heartbeat, and leftover cleanup.

A session's state lives in the graph as ``processing_status_<session_id>`` on each node of its
scope, plus one ``BLARIFY_SESSION`` registry node whose heartbeat a background thread refreshes.
Whatever a killed process leaves behind is found by ``list_sessions`` and removed by
``cleanup_session`` / ``cleanup_leftovers``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from . import queries as q
from .db import GraphDB
from .errors import SessionCleanupError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "NodeRecord",
    "ProcessingSession",
    "SessionCleanupError",
    "cleanup_leftovers",
    "cleanup_session",
    "list_sessions",
]

log = logging.getLogger("blarify_lab")

SessionStatus = Literal["running", "completed", "failed", "timed_out", "cancelled"]
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
STALE_AFTER_HEARTBEATS = 3
CLEANUP_BATCH_SIZE = 10_000
SESSION_COLUMNS = [
    "session_id",
    "state",
    "root_path",
    "started_at",
    "heartbeat_age_s",
    "host",
    "pid",
    "pending",
    "in_progress",
    "completed",
    "failed",
    "nodes",
]


@dataclass(slots=True)
class NodeRecord:
    """What happened to one node in a session."""

    node_id: int
    path: str = ""
    labels: tuple[str, ...] = ()
    depth: int | None = None
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    error: str | None = None
    cycle: bool = False


@dataclass(eq=False)
class ProcessingSession:
    """One run of ``process_node``: its id, status, timing, counts and per-node records."""

    session_id: str
    root_path: str
    scope: q.Scope = "graph"
    relationship_type: str = "CONTAINS"
    max_workers: int = 1
    timeout: float | None = None
    status: SessionStatus = "running"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    total: int = 0
    error: str | None = None
    nodes: dict[int, NodeRecord] = field(default_factory=dict[int, NodeRecord], repr=False)
    recent_errors: deque[tuple[str, str]] = field(
        default_factory=lambda: deque(maxlen=10), repr=False
    )
    _counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(q.NODE_STATUSES, 0), repr=False
    )
    cycles: int = 0
    _t0: float = field(default_factory=time.perf_counter, repr=False)
    _t_end: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ----------------------------------------------------------------- updated by the processor
    def _set_total(self, total: int) -> None:
        with self._lock:
            self.total = total
            self._counts = dict.fromkeys(q.NODE_STATUSES, 0)
            self._counts["pending"] = total

    def _move(self, old: str, new: str, n: int = 1) -> None:
        with self._lock:
            self._counts[old] -= n
            self._counts[new] += n

    def _finish(self, status: SessionStatus, error: str | None = None) -> None:
        self._t_end = time.perf_counter()
        self.finished_at = datetime.now(UTC)
        self.status = status
        self.error = error

    # -------------------------------------------------------------------------------- reading
    @property
    def id(self) -> str:
        """The session id (same as ``session_id``)."""
        return self.session_id

    @property
    def counts(self) -> dict[str, int]:
        """Nodes per status (pending, in_progress, completed, failed) and ``cycles``."""
        with self._lock:
            return {**self._counts, "cycles": self.cycles}

    @property
    def elapsed_s(self) -> float:
        return (self._t_end or time.perf_counter()) - self._t0

    @property
    def done(self) -> bool:
        return self.status != "running"

    def report(self) -> pd.DataFrame:
        """One row per node: path, labels, depth, status, timing, worker, error, cycle flag."""
        from .reports import session_report

        return session_report(self)

    def summary(self) -> pd.DataFrame:
        """Counts, wall time, throughput, node-time statistics and worker utilisation."""
        from .reports import session_summary

        return session_summary(self)

    def plot_timeline(self) -> Figure:
        """A matplotlib figure of busy workers over time and completions per second."""
        from .reports import plot_timeline

        return plot_timeline(self)

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"<ProcessingSession {self.session_id} {self.status} root={self.root_path!r} "
            f"{c['completed']}/{self.total} completed, {c['failed']} failed, "
            f"{self.elapsed_s:.1f}s>"
        )

    def _repr_html_(self) -> str:
        from .reports import session_html

        return session_html(self)


# ------------------------------------------------------------------- registry and heartbeat


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
            self._thread.join(timeout=self._interval + 5)

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
                        "total": self._session.total,
                    },
                )
            except Exception as err:  # a missed beat is not fatal; the session goes on
                log.warning("heartbeat of session %s failed: %s", self._session.session_id, err)


def register_session(
    db: GraphDB, session: ProcessingSession, *, host: str, pid: int, heartbeat_interval: float
) -> None:
    """Create the session's registry node."""
    db.run_query(
        q.register_session_query(),
        {
            "session_id": session.session_id,
            "root_path": session.root_path,
            "scope": session.scope,
            "relationship_type": session.relationship_type,
            "host": host,
            "pid": pid,
            "timeout_s": session.timeout,
            "heartbeat_interval_s": heartbeat_interval,
        },
    )


def remove_session_traces(
    db: GraphDB, session_id: str, batch_size: int = CLEANUP_BATCH_SIZE
) -> int:
    """Remove a session's status property from every node, then its registry node.

    Works in batches of ``batch_size`` nodes so that no transaction grows with the graph.
    Returns how many nodes carried the session's property.
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


def _parse_duration(value: float | int | str | timedelta | None) -> float | None:
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
    when nodes carry a session's status with no registry entry.
    """
    threshold = _parse_duration(stale_after)
    rows: dict[str, dict[str, Any]] = {}
    for rec in db.run_query(q.list_registered_sessions_query(), {}):
        s: dict[str, Any] = rec["session"]
        sid = str(s.get("session_id", ""))
        now = int(rec["now"])
        beat = s.get("heartbeat_at")
        age = (now - int(beat)) / 1000.0 if beat is not None else None
        interval = float(s.get("heartbeat_interval_s") or DEFAULT_HEARTBEAT_INTERVAL_S)
        limit = threshold if threshold is not None else STALE_AFTER_HEARTBEATS * interval
        rows[sid] = {
            "session_id": sid,
            "state": "active" if age is not None and age <= limit else "stale",
            "root_path": s.get("root_path"),
            "started_at": _ms_to_datetime(s.get("started_at")),
            "heartbeat_age_s": age,
            "host": s.get("host"),
            "pid": s.get("pid"),
        }
    for rec in db.run_query(q.list_status_keys_query(), {}):
        sid = str(rec["key"])[len(q.STATUS_PREFIX) :]
        row = rows.setdefault(
            sid,
            {
                "session_id": sid,
                "state": "orphaned",
                "root_path": None,
                "started_at": None,
                "heartbeat_age_s": None,
                "host": None,
                "pid": None,
            },
        )
        status = str(rec["status"])
        row[status] = row.get(status, 0) + int(rec["count"])
    frame = pd.DataFrame(list(rows.values()), columns=SESSION_COLUMNS)
    for status in q.NODE_STATUSES:
        frame[status] = frame[status].fillna(0).astype("int64")
    frame["nodes"] = frame[list(q.NODE_STATUSES)].sum(axis=1).astype("int64")
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    frame["heartbeat_age_s"] = frame["heartbeat_age_s"].astype("float64")
    frame = frame.sort_values(["state", "session_id"], kind="stable")
    return frame.reset_index(drop=True)


def cleanup_session(db: GraphDB, session_id: str) -> int:
    """Remove one session's traces (status properties and registry node); returns nodes cleaned.

    The id is validated before any query runs. Removing a session that is still running makes
    that run fail; check ``list_sessions`` first.
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
