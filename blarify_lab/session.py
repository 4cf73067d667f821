"""What one run of ``process_node`` is: a ``ProcessingSession`` with a ``NodeRecord`` per node.

No database and no pandas here: the processor updates a session through its package-internal
methods (``begin``, ``claimed``, ``started``, ``finished``, ``end``) from the scheduler and
worker threads, and everything that reads it (reports, the dashboard, progress bars) gets
consistent counts under one lock. A node moves ``pending -> queued`` (claimed from the graph,
waiting for a free worker) ``-> running`` (a worker has it) ``-> completed | failed``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from .errors import SessionCancelled
from .queries import Scope

if TYPE_CHECKING:
    import pandas as pd

    from .figures import TimelineFigure

__all__ = [
    "NODE_STATES",
    "NodeRecord",
    "ProcessingSession",
    "SessionStatus",
    "describe_error",
    "status_for",
]

SessionStatus = Literal["running", "completed", "failed", "timed_out", "cancelled"]
NodeState = Literal["pending", "queued", "running", "completed", "failed"]
NODE_STATES: tuple[NodeState, ...] = ("pending", "queued", "running", "completed", "failed")
RECENT_ERRORS = 10


@dataclass(slots=True)
class NodeRecord:
    """What happened to one node in a session (times are seconds since the session started)."""

    node_id: int
    path: str = ""
    labels: tuple[str, ...] = ()
    name: str | None = None
    depth: int | None = None
    status: NodeState = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    error: str | None = None
    cycle: bool = False
    cached: bool = False  # its stored documentation was reused: no LLM call
    description: str | None = None  # the LLM's text for this node alone
    attempts: int = 0  # LLM calls made for it (a retried call counts each attempt)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False  # the provider reported no usage: estimated
    cost_usd: float | None = None  # with prices set
    truncated: bool = False  # the answer was cut short: stored marked, never reused
    ungrounded: tuple[str, ...] | None = None  # names its description uses that do not exist
    grounded_ratio: float | None = None  # found / named; None: names nothing, or not checked


@dataclass(eq=False)
class ProcessingSession:
    """One run of ``process_node``: its id, status, timing, counts and per-node records."""

    session_id: str
    root_path: str
    scope: Scope = "graph"
    relationship_type: str = "CONTAINS"
    max_workers: int = 1
    timeout: float | None = None
    force: bool = False  # ask the LLM about every node, whatever is stored
    use_hierarchy: bool = True  # the hierarchy's relationships, else the call graph's
    schema: str = "default"  # the graph's shape (GraphSchema.name), known once it starts
    tenant: str | None = None  # the tenant it keeps to (``entityId=..., repoId=...``)
    status: SessionStatus = "running"
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    total: int = 0
    error: str | None = None
    cycles: int = 0
    llm_calls: int = 0
    cached: int = 0
    outside_subtree: int = 0  # nodes of a scope="graph" session that the root does not reach
    retries: int = 0  # attempts beyond the first, over all nodes
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # with prices set
    rate_wait_s: float = 0.0  # time workers spent waiting on rate limits (summed)
    names_named: int = 0  # identifiers the descriptions name (each once per description)
    names_found: int = 0  # of those, the ones the nodes have
    nodes: dict[int, NodeRecord] = field(default_factory=dict[int, NodeRecord], repr=False)
    recent_errors: deque[tuple[str, str]] = field(
        default_factory=lambda: deque(maxlen=RECENT_ERRORS), repr=False
    )
    _counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(NODE_STATES, 0), repr=False
    )
    _t0: float = field(default_factory=time.perf_counter, repr=False)
    _t_end: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------- updated by the processor only
    def clock(self) -> float:
        """Seconds since the session was created (the time base of every ``NodeRecord``)."""
        return time.perf_counter() - self._t0

    def begin(self, records: dict[int, NodeRecord]) -> None:
        """The session's scope is known: one pending record per node."""
        with self._lock:
            self.nodes = records
            self.total = len(records)
            self._counts = dict.fromkeys(NODE_STATES, 0)
            self._counts["pending"] = len(records)

    def claimed(
        self, node_id: int, path: str, labels: tuple[str, ...], name: object = None
    ) -> None:
        """The node was claimed from the graph and waits for a worker."""
        record = self.nodes[node_id]
        with self._lock:
            record.path, record.labels = path, labels
            record.name = name if isinstance(name, str) else None
            self._move(record, "queued")

    def started(self, node_id: int, worker: str) -> None:
        """A worker took the node."""
        record = self.nodes[node_id]
        with self._lock:
            record.started_at = self.clock()
            record.worker = worker
            self._move(record, "running")

    def worker_done(self, node_id: int) -> None:
        """The worker is done with the node (its outcome is recorded by ``finished`` once the
        scheduler has taken it): the node's ``finished_at``, so that a node's time is the time
        a worker spent on it."""
        record = self.nodes[node_id]
        with self._lock:
            if record.finished_at is None:
                record.finished_at = self.clock()

    def called_llm(self) -> None:
        """A worker is about to ask the LLM."""
        with self._lock:
            self.llm_calls += 1

    def used(
        self,
        node_id: int,
        *,
        attempts: int,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        estimated: bool = False,
        cost_usd: float | None = None,
        waited_s: float = 0.0,
        truncated: bool = False,
    ) -> None:
        """What asking the LLM about a node took: attempts, tokens, cost, rate-limit waits,
        and whether its answer was cut short."""
        record = self.nodes[node_id]
        with self._lock:
            record.truncated = record.truncated or truncated
            record.attempts += attempts
            record.prompt_tokens += prompt_tokens
            record.completion_tokens += completion_tokens
            record.tokens_estimated = record.tokens_estimated or estimated
            self.retries += max(attempts - 1, 0)
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.rate_wait_s += waited_s
            if cost_usd is not None:
                record.cost_usd = (record.cost_usd or 0.0) + cost_usd
                self.cost_usd = (self.cost_usd or 0.0) + cost_usd

    def grounded(self, node_id: int, named: int, ungrounded: tuple[str, ...]) -> None:
        """The grounding check of the node's description: how many names it uses, and those
        the node does not have (``grounding.check_grounding``)."""
        record = self.nodes[node_id]
        with self._lock:
            record.ungrounded = ungrounded
            record.grounded_ratio = (named - len(ungrounded)) / named if named else None
            self.names_named += named
            self.names_found += named - len(ungrounded)

    @property
    def grounded_ratio(self) -> float | None:
        """Found ÷ named over the session's descriptions; None when none names anything."""
        with self._lock:
            return self.names_found / self.names_named if self.names_named else None

    def finished(
        self,
        node_id: int,
        *,
        ok: bool,
        error: str | None = None,
        cycle: bool = False,
        cached: bool = False,
        description: str | None = None,
    ) -> None:
        """The node is documented (``ok``) or failed with ``error``; ``cached`` when its
        stored documentation was reused."""
        record = self.nodes[node_id]
        with self._lock:
            if record.finished_at is None:
                record.finished_at = self.clock()
            record.cycle = cycle
            record.cached = cached
            record.description = description
            self.cached += cached
            if not ok:
                record.error = error or record.error or "failed"
                self.recent_errors.append((record.path, record.error))
            self._move(record, "completed" if ok else "failed")

    def end(self, status: SessionStatus, error: str | None = None) -> None:
        """The session is over (before its state is removed from the graph)."""
        with self._lock:
            if self._t_end is not None:
                return
            self._t_end = time.perf_counter()
            self.finished_at = datetime.now(UTC)
            self.status = status
            self.error = error

    def _move(self, record: NodeRecord, new: NodeState) -> None:
        self._counts[record.status] -= 1
        self._counts[new] += 1
        record.status = new

    # ---------------------------------------------------------------------------- reading
    @property
    def id(self) -> str:
        """The session id (same as ``session_id``)."""
        return self.session_id

    @property
    def counts(self) -> dict[str, int]:
        """Nodes per state (pending, queued, running, completed, failed) and ``cycles``."""
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

    def plot_timeline(self) -> TimelineFigure:
        """A figure of busy workers over time and completions per second (shows as a PNG)."""
        from .figures import plot_timeline

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


def status_for(err: BaseException | None) -> SessionStatus:
    """The status a session ends with when ``err`` ended it (``None``: completed)."""
    if err is None:
        return "completed"
    if isinstance(err, TimeoutError):
        return "timed_out"
    if isinstance(err, SessionCancelled | KeyboardInterrupt):
        return "cancelled"
    return "failed"


def describe_error(err: BaseException) -> str:
    """``Type: message`` on one line."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"
