"""A thread pool whose workers can be left behind.

``concurrent.futures.ThreadPoolExecutor`` joins its (non-daemon) workers at interpreter exit, so
a worker stuck in a slow LLM call would hold up a timed-out session's process forever. This pool
is the same idea with daemon workers and ``abandon()``: stop handing out work, cancel what is
queued, and return at once while running calls finish (or hang) on their own.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

__all__ = ["WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

_WorkItem = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkerPool(Executor):
    """At most ``max_workers`` daemon threads, started on demand and reused for every task."""

    def __init__(self, max_workers: int, name: str = "blarify-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._counter = itertools.count(1)
        self._closed = False

    @property
    def threads_started(self) -> int:
        """How many worker threads this pool has started (never more than ``max_workers``)."""
        return len(self._threads)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            future: Future[T] = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{next(self._counter)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as err:  # handed to whoever waits on the future
                    future.set_exception(err)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs  # do not keep the last task's objects alive
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                self._cancel_queued()
            for _ in self._threads:
                self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Leaving normally waits for the (idle) workers; leaving on an error abandons them.

        An interrupt landing meanwhile (before every worker was told to stop) still tells
        them, so that no idle worker is left waiting for work forever."""
        try:
            if exc is None:
                self.shutdown(wait=True)
            else:
                self.abandon()
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Cancel queued work and return at once; running calls end on their own."""
        self.shutdown(wait=False, cancel_futures=True)

    def _cancel_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[0].cancel()
