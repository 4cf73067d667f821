"""The hand-off between the scheduler and its workers: claimed nodes, best first.

The scheduler claims nodes in batches (one round trip each) and submits one task per node;
a task, when a worker starts it, takes the claimed node with the longest chain above it, so
the pool's queue follows the critical path too. How many nodes to keep in flight grows when
calls are quick: a round trip then serves many nodes instead of three per worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Generic, TypeVar

from .priorities import ReadyQueue
from .workers import WorkerPool

__all__ = ["Dispatch"]

R = TypeVar("R")
Outcome = tuple[int, "R | Exception"]

IN_FLIGHT_PER_WORKER = 3  # claimed or running, per worker, for slow calls
BATCH_HORIZON_S = 0.05  # quick calls: keep this many seconds of work claimed
MAX_IN_FLIGHT = 2048


class Dispatch(Generic[R]):
    """Claimed nodes waiting for a worker, and the tasks that run them."""

    def __init__(self, priority: Mapping[int, float], work: Callable[[int], R], workers: int):
        self._claimed = ReadyQueue(priority)
        self._lock = threading.Lock()
        self._work = work
        self._workers = workers
        self._task_s: float | None = None  # a moving average of one task's seconds

    @property
    def task_s(self) -> float | None:
        """What one task took lately (a moving average; None before the first)."""
        return self._task_s

    def best(self) -> float:
        """The longest chain above a claimed node still waiting for a worker."""
        with self._lock:
            return self._claimed.best()

    def in_flight_target(self) -> int:
        """How many nodes to keep claimed or running: 3 per worker, more for quick calls."""
        floor = self._workers * IN_FLIGHT_PER_WORKER
        if self._task_s is None:
            return floor
        quick = int(self._workers * BATCH_HORIZON_S / max(self._task_s, 1e-6))
        return max(floor, min(MAX_IN_FLIGHT, quick))

    def submit(
        self,
        pool: WorkerPool,
        nodes: list[int],
        running: set[Future[Outcome[R]]],
        done: Callable[[Future[Outcome[R]]], object],
    ) -> None:
        with self._lock:
            self._claimed.extend(nodes)
        for _ in nodes:
            future = pool.submit(self._run_best)
            running.add(future)
            future.add_done_callback(done)

    def _run_best(self) -> Outcome[R]:
        """Worker entry: run the claimed node with the longest chain above it; its error is
        returned, not raised (the scheduler records it)."""
        with self._lock:
            node_id = self._claimed.pop()
        start = time.perf_counter()
        try:
            return node_id, self._work(node_id)
        except Exception as err:
            return node_id, err
        finally:
            spent = time.perf_counter() - start
            last = self._task_s
            self._task_s = spent if last is None else 0.9 * last + 0.1 * spent
