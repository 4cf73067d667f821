"""A session's spending limit, held across all its workers: reserve before a call, settle after.

::

    budget = CallBudget(limit_usd=1.0)
    reserved = budget.reserve(estimate_usd, cancel=cancel, deadline=deadline)  # None: spent
    try:
        cost = ...call the LLM...
    finally:
        budget.settle(reserved, cost)          # the real cost replaces the reservation

A call starts only while what is spent plus what the calls in flight have reserved is below
the limit, so however many workers there are the session overruns its limit by at most about
one call's cost. A call reserves the larger of its estimate and the dearest call seen so far;
until one call has finished (and shown what a call really costs) the calls of a budgeted
session run one at a time. A worker that may not start yet waits for a call in flight to
settle. Pure threading: no I/O.

This module imports only ``blarify_lab.errors``.
"""

from __future__ import annotations

import threading
import time

from .errors import SessionCancelled

__all__ = ["CallBudget"]

_POLL_S = 0.05  # how often a waiting worker looks at its cancel event


class CallBudget:
    """Reservations against ``limit_usd`` (see the module docstring)."""

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.in_flight = 0
        self.dearest_usd = 0.0  # the largest real cost of one call so far
        self._known = False  # a call has finished with its real cost
        self._cond = threading.Condition()

    def reserve(
        self,
        estimate_usd: float,
        *,
        cancel: threading.Event | None = None,
        deadline: float | None = None,
    ) -> float | None:
        """Wait until a call may start and reserve its cost; None when the limit is spent.

        Raises ``SessionCancelled`` when ``cancel`` is set, ``TimeoutError`` when
        ``deadline`` (``time.monotonic()``) passes while waiting."""
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    raise SessionCancelled("cancelled while waiting for the budget")
                if self.spent_usd >= self.limit_usd:
                    return None
                committed = self.spent_usd + self.reserved_usd
                if self.in_flight == 0 or (self._known and committed < self.limit_usd):
                    amount = max(estimate_usd, self.dearest_usd, 0.0)
                    self.reserved_usd += amount
                    self.in_flight += 1
                    return amount
                wait = _POLL_S
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("the deadline passed while waiting for the budget")
                    wait = min(wait, left)
                self._cond.wait(wait)

    def settle(self, reserved_usd: float, cost_usd: float | None) -> None:
        """A call ended: release its reservation and count its real cost (None: it failed
        and cost nothing)."""
        with self._cond:
            self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
            self.in_flight = max(0, self.in_flight - 1)
            if cost_usd is not None:
                self.spent_usd += cost_usd
                self.dearest_usd = max(self.dearest_usd, cost_usd)
                self._known = True
            self._cond.notify_all()

    def __repr__(self) -> str:
        return (
            f"CallBudget(limit_usd={self.limit_usd:g}, spent_usd={self.spent_usd:g}, "
            f"reserved_usd={self.reserved_usd:g}, in_flight={self.in_flight})"
        )
