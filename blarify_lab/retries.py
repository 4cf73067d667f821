"""Retry an LLM call on transient failures, never past a deadline (built on ``tenacity``).

::

    value, attempts = call_with_retries(lambda: llm.complete(prompt), max_retries=4, deadline=t)

Transient, retried with exponential backoff and jitter (or exactly the server's ``Retry-After``):

- an HTTP status in ``TRANSIENT_STATUS_CODES`` (408, 429, 500, 502, 503, 504), read from the
  exception's ``status_code`` or ``response.status_code`` — openai's ``RateLimitError`` and
  ``InternalServerError``, and what LangChain, httpx, requests or another client raise;
- a timeout or a dropped connection: ``TimeoutError``, ``ConnectionError``, or an exception
  whose class (or a base) is named like ``APITimeoutError``/``APIConnectionError`` (openai,
  anthropic), ``TimeoutException``/``NetworkError``/``RemoteProtocolError`` (httpx),
  ``Timeout``/``ConnectionError`` (requests) — matched by name, so no client is imported.

Anything else (400, 401, 403, 404, a ``TypeError`` …) is permanent: raised at once.

Whatever fails reaches the caller as ``LLMCallError`` (a ``BlarifyLabError``) with ``attempts``
(how many calls were made), ``status_code`` (or None), ``reason`` (``"permanent"``,
``"retries_exhausted"``, ``"deadline"`` or ``"retry_wait_too_long"``: the server asked to wait
longer than ``max_retry_wait_s``, 60 s by default), the server's own message in the text, and the
original exception as ``__cause__``. A ``cancel`` event set during a backoff raises
``SessionCancelled`` instead. ``fn`` may pace itself (``RateLimiter.acquire`` inside it): its
``SessionCancelled`` passes through unwrapped, and a ``PacingTimeout`` (any blarify_lab error
that is a ``TimeoutError``) becomes ``LLMCallError(reason="deadline")`` whose ``attempts``
leave out that last, never-sent attempt.

This module imports only ``blarify_lab.errors``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from .errors import BlarifyLabError, LLMCallError, RetryReason, SessionCancelled

__all__ = [
    "DEFAULT_MAX_RETRY_WAIT_S",
    "TRANSIENT_STATUS_CODES",
    "LLMCallError",
    "RetryEvent",
    "call_with_retries",
    "error_message",
    "is_transient",
    "retry_after_seconds",
    "status_code_of",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS_CODES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_MAX_RETRY_WAIT_S = 60.0  # the longest one wait before a retry may be

_TRANSIENT_CLASS_NAMES = frozenset(
    {
        "APITimeoutError",  # openai, anthropic
        "APIConnectionError",  # openai, anthropic
        "TimeoutException",  # httpx (ConnectTimeout, ReadTimeout, ...)
        "NetworkError",  # httpx (ConnectError, ReadError, ...)
        "RemoteProtocolError",  # httpx: server closed the connection mid-answer
        "Timeout",  # requests
        "ConnectionError",  # requests (not the builtin), and the builtin
    }
)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One failed attempt that will be retried, passed to ``on_retry`` before the wait.

    ``retry_after`` is what the server asked for (seconds, None if nothing); ``wait_s`` what
    will actually be waited. A 429 is ``status_code == 429``: feed it to
    ``RateLimiter.on_rate_limited(event.retry_after)``.
    """

    attempt: int
    error: BaseException
    status_code: int | None
    retry_after: float | None
    wait_s: float


# --- classifying errors ---------------------------------------------------------------------


def status_code_of(error: BaseException) -> int | None:
    """The HTTP status an exception carries: ``error.status_code`` or
    ``error.response.status_code`` (an int in 100..599), else None."""
    for holder in (error, getattr(error, "response", None)):
        code = getattr(holder, "status_code", None) if holder is not None else None
        if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
            return code
    return None


def is_transient(error: BaseException) -> bool:
    """Whether retrying ``error`` may help (see the module docstring for the rules).

    blarify_lab's own errors (``SessionCancelled``, ``PacingTimeout`` …) are decisions, not
    accidents: never transient."""
    if isinstance(error, BlarifyLabError):
        return False
    code = status_code_of(error)
    if code is not None:
        return code in TRANSIENT_STATUS_CODES
    if isinstance(error, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSIENT_CLASS_NAMES for cls in type(error).__mro__)


def _headers_of(error: BaseException) -> Mapping[str, Any] | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) if response is not None else None
    if headers is None:
        headers = getattr(error, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)  # httpx and requests headers are case-insensitive
    if value is None:
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = val
                break
    return str(value).strip() if value is not None else None


def retry_after_seconds(error: BaseException) -> float | None:
    """The wait the server asked for: ``retry-after-ms`` (milliseconds), else ``retry-after``
    (seconds, a float allowed, or an HTTP date); None when absent or unreadable."""
    headers = _headers_of(error)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = _header(headers, name)
        if raw is None:
            continue
        try:
            seconds = float(raw) / scale
        except ValueError:
            if scale != 1.0:
                continue
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                continue
            seconds = when.timestamp() - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def error_message(error: BaseException) -> str:
    """The server's own words when the error carries a JSON body (``{"error": {"message":
    ...}}`` or ``{"message": ...}``), else ``str(error)``; one line."""
    body = getattr(error, "body", None)
    message: object = None
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else inner
    if not isinstance(message, str) or not message.strip():
        message = str(error) or type(error).__name__
    return " ".join(message.split())


# --- the retry loop -------------------------------------------------------------------------


def _backoff(attempt: int, base_delay: float, max_delay: float) -> float:
    """Exponential backoff with jitter: uniform in [0.5, 1] times base * 2^(attempt-1), capped."""
    ceiling = min(max_delay, base_delay * 2 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


def call_with_retries(
    fn: Callable[[], T],
    *,
    max_retries: int,
    deadline: float | None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S,
) -> tuple[T, int]:
    """Call ``fn()`` until it succeeds; return ``(its result, the number of attempts)``.

    A transient failure (``is_transient``) is retried at most ``max_retries`` times, after the
    server's ``Retry-After`` when it gives one, else after an exponential backoff with jitter
    (``base_delay`` · 2^n, at most ``max_delay``). One wait is at most ``max_retry_wait_s``: a
    server that asks for longer (``Retry-After: 3600``) ends the call at once, with reason
    ``"retry_wait_too_long"``. ``deadline`` is a ``clock()``
    (``time.monotonic()``) instant: when the next wait would end past it, no wait happens and
    the last error is raised. ``on_retry`` hears of each failure that will be retried, before
    its wait. ``cancel``, when given, replaces ``sleep`` with a wait that a set event cuts
    short, raising ``SessionCancelled``.

    Raises ``LLMCallError`` (``attempts``, ``status_code``, ``reason``, ``__cause__``).
    """
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    if not max_retry_wait_s >= 0:
        raise ValueError(f"max_retry_wait_s must be >= 0 seconds, got {max_retry_wait_s!r}")
    attempts = 1
    try:  # most calls succeed at once: no retry machinery for them
        return fn(), attempts
    except SessionCancelled:
        raise
    except Exception as error:
        first: Exception | None = error
    stopped_by_deadline = False
    too_long: float | None = None  # the wait a server asked for, beyond max_retry_wait_s

    def attempt() -> T:
        nonlocal attempts, first
        if first is not None:  # the failed first attempt, as tenacity's first
            error, first = first, None
            raise error
        attempts += 1
        return fn()

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        hint = retry_after_seconds(error) if error is not None else None
        if hint is not None:
            return hint
        return _backoff(state.attempt_number, base_delay, min(max_delay, max_retry_wait_s))

    def stop(state: tenacity.RetryCallState) -> bool:
        nonlocal stopped_by_deadline, too_long
        if state.attempt_number > max_retries:
            return True
        if (state.upcoming_sleep or 0.0) > max_retry_wait_s:
            too_long = state.upcoming_sleep
            return True
        if deadline is not None and clock() + (state.upcoming_sleep or 0.0) > deadline:
            stopped_by_deadline = True
            return True
        return False

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is None:
            return
        event = RetryEvent(
            attempt=state.attempt_number,
            error=error,
            status_code=status_code_of(error),
            retry_after=retry_after_seconds(error),
            wait_s=state.upcoming_sleep or 0.0,
        )
        log.info(
            "LLM call attempt %d failed (%s%s), retrying in %.2f s",
            event.attempt,
            type(error).__name__,
            f", HTTP {event.status_code}" if event.status_code else "",
            event.wait_s,
        )
        if on_retry is not None:
            on_retry(event)

    def do_sleep(seconds: float) -> None:
        if cancel is None:
            sleep(seconds)
        elif cancel.wait(seconds):
            raise SessionCancelled("cancelled while waiting to retry an LLM call")

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=stop,
        wait=wait,
        sleep=do_sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt), attempts
    except SessionCancelled:
        raise
    except Exception as error:
        reason: RetryReason
        if isinstance(error, BlarifyLabError) and isinstance(error, TimeoutError):
            # ``fn`` gave up before calling the LLM (a RateLimiter's PacingTimeout): the
            # deadline, and that attempt never reached the provider.
            reason = "deadline"
            attempts -= 1
        elif not is_transient(error):
            reason = "permanent"
        elif stopped_by_deadline:
            reason = "deadline"
        elif too_long is not None:
            reason = "retry_wait_too_long"
            error.add_note(
                f"the server asked to wait {too_long:g} s before retrying, more than "
                f"max_retry_wait_s={max_retry_wait_s:g}"
            )
        else:
            reason = "retries_exhausted"
        raise LLMCallError(
            error,
            attempts=attempts,
            reason=reason,
            status_code=status_code_of(error),
            server_message=error_message(error),
        ) from error
