"""The scheduler's database round trips, one at a time, on a thread of their own.

While a round trip is on its way (a claim, a read-ahead, a write of finished states), the
scheduler keeps taking in finished nodes and starting the parents whose content is already in
memory: a child's parent never waits behind the database. One trip at a time keeps the writes
in order (a node claimed by one trip is finished by a later one). The trip runs in the
sender's context, so its query deadline applies; when it lands, ``wake()`` is called (the
scheduler's completion queue) and the rows are taken on the scheduler's own thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from .db import GraphDB
from .workers import WorkerPool

__all__ = ["RoundTrips"]

T = TypeVar("T")
Rows = list[dict[str, Any]]


class RoundTrips(Generic[T]):
    """At most one query in flight, with what its sender wants back when it lands (``T``)."""

    def __init__(self, db: GraphDB, wake: Callable[[], object], name: str) -> None:
        self._db = db
        self._wake = wake
        self._pool = WorkerPool(1, name=name)
        self._future: Future[Rows] | None = None
        self._sent: T | None = None

    @property
    def busy(self) -> bool:
        """A trip was sent and not taken yet (landed or not)."""
        return self._future is not None

    @property
    def landed(self) -> bool:
        """The trip in flight has its answer (or its error): ``take()`` will not wait."""
        return self._future is not None and self._future.done()

    def send(self, query: str, params: dict[str, Any], sent: T) -> None:
        """Start ``query``; ``sent`` comes back with its rows from ``take()``."""
        if self._future is not None:
            raise RuntimeError("a round trip is already on its way")
        context = contextvars.copy_context()
        future = self._pool.submit(context.run, self._db.run_query, query, params)
        self._future, self._sent = future, sent
        future.add_done_callback(lambda _f: self._wake())

    def take(self, timeout: float | None = None) -> tuple[Rows, T]:
        """The trip's rows and what was sent with it (waiting up to ``timeout`` for them);
        raises the trip's error. Either way the next trip may be sent."""
        future, sent = self._future, self._sent
        if future is None or sent is None:
            raise RuntimeError("no round trip is on its way")
        try:
            rows = future.result(timeout)
        finally:
            if future.done():
                self._future, self._sent = None, None
        return rows, sent

    def sent(self) -> T | None:
        """What the trip in flight carries (None when none is)."""
        return self._sent

    def close(self) -> None:
        """Stop the trips' thread once the trip on its way (if any) has run: a trip that was
        sent always runs, so ``take()`` after ``close()`` still has its answer."""
        self._pool.shutdown(wait=False)
