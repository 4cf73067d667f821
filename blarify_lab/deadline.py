"""Query deadlines: a context-local cut-off after which the backends stop waiting for answers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["DEADLINE_GRACE_S", "query_deadline", "seconds_left"]

DEADLINE_GRACE_S = 2.0

# the monotonic time after which this context's queries stop waiting (deadline + grace)
_cutoff: ContextVar[float | None] = ContextVar("blarify_lab_query_cutoff", default=None)


@contextlib.contextmanager
def query_deadline(
    deadline: float | None, *, grace: float = DEADLINE_GRACE_S, override: bool = False
) -> Iterator[None]:
    """Bound the queries this thread (context) sends inside the block by a deadline.

    ``deadline`` is a ``time.monotonic()`` value (``None``: no bound). A query still waiting for
    its answer ``grace`` seconds after the deadline fails with a one-line
    ``DatabaseUnavailableError`` ("... did not answer within N s ..."), so that a session never
    outlives its deadline by more than the grace, even on a server that stopped answering. Nested
    blocks keep the earlier bound, unless ``override`` (a session's cleanup, which must run even
    after the session's own deadline has passed, gets a bound of its own). FalkorDB bounds each read of the socket by the time left;
    Neo4j sends the time left as the transaction timeout, which the server enforces (a Neo4j
    server that stopped answering altogether is bounded only by the driver's own timeouts).
    """
    cutoff = None if deadline is None else deadline + grace
    outer = _cutoff.get()
    if not override and outer is not None and (cutoff is None or outer < cutoff):
        cutoff = outer
    token = _cutoff.set(cutoff)
    try:
        yield
    finally:
        _cutoff.reset(token)


def seconds_left() -> float | None:
    """Seconds left before this context's query cut-off (``None``: unbounded)."""
    cutoff = _cutoff.get()
    return None if cutoff is None else cutoff - time.monotonic()
