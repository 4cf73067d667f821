"""The session registry in the graph: register, heartbeat, and remove a session's traces.

A running session has one ``BLARIFY_SESSION`` node whose heartbeat a daemon thread refreshes,
and a ``processing_status_<session_id>`` property on every node of its scope.
``session_lifecycle`` is the whole life of one session as a context manager: register, beat,
run the body, then remove every trace, however the body ends. What a killed process leaves
behind is found and removed by ``leftovers``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import queries as q
from .db import GraphDB
from .deadline import query_deadline
from .errors import SessionCleanupError
from .processes import process_start_time
from .session import ProcessingSession, describe_error, status_for

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_S",
    "Heartbeat",
    "process_start_time",
    "remove_session_traces",
    "running_here",
    "session_lifecycle",
]

log = logging.getLogger("blarify_lab")

DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
CLEANUP_BATCH_SIZE = 10_000
HEARTBEAT_JOIN_S = 1.0  # a beat stuck on a dead database is not waited for longer


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
            "pid_start": process_start_time(os.getpid()),
            "timeout_s": session.timeout,
            "heartbeat_interval_s": heartbeat_interval,
        },
    )
    if session.schema != "default" or session.tenant is not None:
        db.run_query(
            q.describe_session_query(),
            {"session_id": session.session_id, "schema": session.schema, "tenant": session.tenant},
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
    with _RUNNING_LOCK:
        _RUNNING.add(session.session_id)
    try:
        heartbeat.start()
        yield session
    except BaseException as err:
        _ended(session.session_id)
        heartbeat.stop()
        session.end(status_for(err), describe_error(err))
        _clean(db, session.session_id, err, cleanup_timeout)
        raise
    _ended(session.session_id)
    heartbeat.stop()
    session.end("completed")
    _clean(db, session.session_id, None, cleanup_timeout)


# The sessions this process is running: a registry entry of this process whose session is not
# among them ended here without its cleanup (the database failed) and is stale, however alive
# the process is.
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()


def running_here(session_id: str) -> bool:
    """Whether this process is running the session now (its cleanup has not begun)."""
    with _RUNNING_LOCK:
        return session_id in _RUNNING


def _ended(session_id: str) -> None:
    with _RUNNING_LOCK:
        _RUNNING.discard(session_id)


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
    query = q.cleanup_session_query(session_id, batched=True)
    return remove_in_batches(db, query, session_id, {"session_id": session_id}, batch_size)


def remove_in_batches(
    db: GraphDB, query: str, registry_id: str, params: dict[str, Any], batch_size: int
) -> int:
    """Run a batched status-key removal until a batch comes back short, then delete the
    registry node ``registry_id``; returns how many nodes lost the key."""
    removed = 0
    while True:
        rows = db.run_query(query, {**params, "batch_size": batch_size})
        n = int(rows[0]["removed"]) if rows else 0
        removed += n
        if n < batch_size:
            break
    db.run_query(q.delete_session_registry_query(), {"session_id": registry_id})
    return removed
