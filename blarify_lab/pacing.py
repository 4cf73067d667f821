"""Pace the LLM calls of a session: requests and tokens per minute, shared by its workers.

::

    limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=200_000, cancel=event)
    waited = limiter.acquire(tokens=estimate, deadline=t)   # blocks until the call may start
    ...  the call ...
    limiter.on_success()                     # or, on a 429: limiter.on_rate_limited(retry_after)

**Requests** are spread evenly (GCRA: each start gets a slot ``60 / rpm`` after the one
before), so no one-second window ever holds more than ``rpm / 60 + 1`` starts; only the very
first request starts without waiting. A thread reserves its slot before it sleeps, so threads
start in the order they asked and never stampede.

**Tokens** come from a bucket that refills continuously at ``tpm / 60`` per second and holds at
most ``burst_s`` seconds of refill. A request waits until the bucket holds its tokens; one
larger than the bucket waits until the bucket is full, then drives it negative (the debt delays
the requests after it), so it is admitted eventually. ``charge(n)`` adds tokens learnt after the
call (the completion's).

**A 429 slows the whole session**: ``on_rate_limited(retry_after)`` pauses every start until
``retry_after`` seconds from now (``default_pause_s`` when the server did not say) and halves
the rate (at most once per ``backoff_cooldown_s``; never below ``min_factor`` of it); each
``on_success()`` then adds back ``recovery_step`` of the configured rate (additive increase).
Without a configured ``requests_per_minute``, the first 429 caps the session at half the start
rate it saw in the last ``observe_s`` seconds; once recovered the cap is lifted again.
Reservations made before a 429 are dropped and made again behind the pause.

``waited_s`` is the total time threads spent in ``acquire``. Every wait is cut short by the
``cancel`` event (``SessionCancelled``); a slot that would start past ``deadline`` raises
``PacingTimeout`` at once, without waiting.

This module imports only ``blarify_lab.errors``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .errors import PacingTimeout, SessionCancelled

__all__ = ["PacingStats", "PacingTimeout", "RateLimiter"]

_CANCEL_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class PacingStats:
    """A snapshot of a ``RateLimiter`` for a report."""

    acquired: int
    waited_s: float
    rate_limited: int
    effective_rpm: float | None
    factor: float
    paused_until: float


def _check_limit(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0 (or None for no limit), got {value!r}")
    return float(value)


class RateLimiter:
    """Requests- and tokens-per-minute pacing shared by all worker threads of a session.

    ``requests_per_minute`` / ``tokens_per_minute``: None for no limit. See the module
    docstring for the behaviour; all methods are thread-safe.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_s: float = 2.0,
        default_pause_s: float = 1.0,
        min_factor: float = 1 / 16,
        recovery_step: float = 0.05,
        backoff_cooldown_s: float = 1.0,
        observe_s: float = 10.0,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests_per_minute = _check_limit("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = _check_limit("tokens_per_minute", tokens_per_minute)
        if burst_s <= 0 or default_pause_s < 0 or not 0 < min_factor <= 1:
            raise ValueError("burst_s must be > 0, default_pause_s >= 0, 0 < min_factor <= 1")
        if not 0 < recovery_step <= 1:
            raise ValueError(f"recovery_step must be in (0, 1], got {recovery_step}")
        self.burst_s = burst_s
        self.default_pause_s = default_pause_s
        self.min_factor = min_factor
        self.recovery_step = recovery_step
        self.backoff_cooldown_s = backoff_cooldown_s
        self.observe_s = observe_s
        self.cancel = cancel
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        now = clock()
        self._next_slot = now  # when the next request may start
        self._paused_until = now
        self._epoch = 0  # bumped by a 429: reservations of an older epoch are made again
        self._factor = 1.0  # multiplicative backoff of both rates
        self._ceiling_rpm = self.requests_per_minute  # the rate the factor applies to
        self._last_backoff = -math.inf
        self._tokens = self._capacity()  # the bucket starts full
        self._tokens_at = now
        self._starts: deque[float] = deque()  # recent starts, to learn a rate after a 429
        self._waited_s = 0.0
        self._acquired = 0
        self._rate_limited = 0

    # --- state, under the lock --------------------------------------------------------------

    def _capacity(self) -> float:
        if self.tokens_per_minute is None:
            return math.inf
        return self.tokens_per_minute / 60.0 * self.burst_s

    def _token_rate(self) -> float:
        assert self.tokens_per_minute is not None
        return self.tokens_per_minute / 60.0 * self._factor

    def _interval(self) -> float:
        if self._ceiling_rpm is None:
            return 0.0
        return 60.0 / (self._ceiling_rpm * self._factor)

    def _tokens_ready_at(self, tokens: int, earliest: float) -> float:
        """When the bucket holds ``tokens`` (capped at its capacity), not before ``earliest``."""
        if self.tokens_per_minute is None or tokens <= 0:
            return earliest
        need = min(float(tokens), self._capacity())
        level = self._tokens_level(max(earliest, self._tokens_at))
        if level >= need:
            return earliest
        return max(earliest, self._tokens_at) + (need - level) / self._token_rate()

    def _tokens_level(self, at: float) -> float:
        if self.tokens_per_minute is None:
            return math.inf
        elapsed = max(0.0, at - self._tokens_at)
        return min(self._capacity(), self._tokens + elapsed * self._token_rate())

    def _reserve(self, tokens: int, now: float) -> float:
        start = max(now, self._next_slot, self._paused_until)
        start = self._tokens_ready_at(tokens, start)
        return start

    def _commit(self, tokens: int, start: float) -> None:
        self._next_slot = start + self._interval()
        if self.tokens_per_minute is not None:
            self._tokens = self._tokens_level(start) - max(0, tokens)
            self._tokens_at = max(self._tokens_at, start)

    # --- the API ----------------------------------------------------------------------------

    def acquire(
        self,
        tokens: int = 0,
        deadline: float | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> float:
        """Block until a request of ``tokens`` tokens may start; return the seconds waited.

        Raises ``PacingTimeout`` at once when the request could only start after ``deadline``
        (a ``time.monotonic()`` instant), and ``SessionCancelled`` when ``cancel`` (or the
        limiter's own ``cancel``) is set while waiting.
        """
        cancel = cancel if cancel is not None else self.cancel
        began = self._clock()
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    self._waited_s += self._clock() - began
                    raise SessionCancelled("cancelled while waiting for the LLM rate limit")
                now = self._clock()
                start = self._reserve(tokens, now)
                if deadline is not None and start > deadline:
                    self._waited_s += now - began
                    raise PacingTimeout(
                        f"the LLM rate limit would start this request in {start - now:.2f} s, "
                        f"after its deadline ({deadline - now:.2f} s from now)"
                    )
                self._commit(tokens, start)
                epoch = self._epoch
                # Sleep until the reserved slot, unless a 429 drops the reservation.
                while epoch == self._epoch:
                    now = self._clock()
                    if now >= start:
                        break
                    if cancel is not None and cancel.is_set():
                        break
                    remaining = start - now
                    self._cond.wait(min(remaining, _CANCEL_POLL_S) if cancel else remaining)
                if epoch != self._epoch or (cancel is not None and cancel.is_set()):
                    # Give the tokens back; make the reservation again behind the pause (or
                    # raise at the top of the loop).
                    if self.tokens_per_minute is not None:
                        self._tokens += max(0, tokens)
                    continue
                now = self._clock()
                self._starts.append(now)
                while self._starts and self._starts[0] < now - self.observe_s:
                    self._starts.popleft()
                self._acquired += 1
                waited = now - began
                self._waited_s += waited
                return waited

    def charge(self, tokens: int) -> None:
        """Take ``tokens`` more from the bucket (e.g. the completion's, once known)."""
        if self.tokens_per_minute is None or tokens <= 0:
            return
        with self._cond:
            now = self._clock()
            at = max(now, self._tokens_at)
            self._tokens = self._tokens_level(at) - tokens
            self._tokens_at = at

    def on_rate_limited(self, retry_after: float | None = None) -> None:
        """A 429: pause every start for ``retry_after`` s (``default_pause_s`` if None) and
        halve the rate (once per ``backoff_cooldown_s``)."""
        pause = self.default_pause_s if retry_after is None else max(0.0, float(retry_after))
        with self._cond:
            now = self._clock()
            self._rate_limited += 1
            if now - self._last_backoff >= self.backoff_cooldown_s:
                self._last_backoff = now
                if self._ceiling_rpm is None:
                    self._ceiling_rpm = self._observed_rpm(now)
                    self._factor = 0.5
                else:
                    self._factor = max(self.min_factor, self._factor / 2)
            self._paused_until = max(self._paused_until, now + pause)
            # Drop every reservation: the sleepers make theirs again behind the pause.
            self._next_slot = max(now, self._paused_until)
            self._epoch += 1
            self._cond.notify_all()

    def on_success(self) -> None:
        """A call went through: add ``recovery_step`` back to the rate, up to the configured
        one (and lift a cap that a 429 put on an unlimited session once it has recovered)."""
        with self._cond:
            if self._factor >= 1.0:
                return
            self._factor = min(1.0, self._factor + self.recovery_step)
            if self._factor >= 1.0 and self.requests_per_minute is None:
                self._ceiling_rpm = None

    def _observed_rpm(self, now: float) -> float:
        recent = [t for t in self._starts if t >= now - self.observe_s]
        if len(recent) < 2:
            return max(1.0, 60.0 * len(recent) / self.observe_s)
        span = max(now - recent[0], 1.0)
        return 60.0 * len(recent) / span

    # --- for reports ------------------------------------------------------------------------

    @property
    def waited_s(self) -> float:
        """Total seconds threads spent waiting in ``acquire``."""
        with self._cond:
            return self._waited_s

    @property
    def effective_rpm(self) -> float | None:
        """The request rate now in force (None: no limit)."""
        with self._cond:
            return None if self._ceiling_rpm is None else self._ceiling_rpm * self._factor

    def stats(self) -> PacingStats:
        with self._cond:
            return PacingStats(
                acquired=self._acquired,
                waited_s=self._waited_s,
                rate_limited=self._rate_limited,
                effective_rpm=None
                if self._ceiling_rpm is None
                else self._ceiling_rpm * self._factor,
                factor=self._factor,
                paused_until=self._paused_until,
            )

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute})"
        )
