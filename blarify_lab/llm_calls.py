"""One paced, retried LLM call: ``RateLimiter`` + ``call_with_retries`` + ``Completion``.

::

    outcome = call_llm(adapter.complete, prompt, limiter=limiter, max_retries=4,
                       deadline=deadline, cancel=cancel)
    outcome.completion.text, outcome.attempts, outcome.waited_s, outcome.backoff_s

Every attempt first waits for the shared limiter (the prompt's estimated tokens), a 429 slows
the whole limiter (``on_rate_limited(retry_after)``), a success speeds it up again
(``on_success()``) and charges the tokens learnt from the answer. Errors are those of
``call_with_retries``: ``LLMCallError`` (``attempts``, ``status_code``, ``reason``),
``SessionCancelled``.

This module imports ``blarify_lab.pacing``, ``blarify_lab.retries`` and ``blarify_lab.usage``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .pacing import RateLimiter
from .retries import DEFAULT_MAX_RETRY_WAIT_S, RetryEvent, call_with_retries
from .usage import Completion, estimate_tokens

__all__ = ["CallOutcome", "call_llm"]


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """A successful call: the completion, how many attempts it took, the seconds spent waiting
    for the rate limiter (``waited_s``) and sleeping between attempts (``backoff_s``), and
    what the successful attempt itself took (``latency_s``)."""

    completion: Completion
    attempts: int
    waited_s: float
    backoff_s: float
    latency_s: float = 0.0

    def measured(self) -> dict[str, object]:
        """What the call took, as stored with its documentation (``latency_model``)."""
        return {
            "latency_s": round(self.latency_s, 4),
            "prompt_tokens": self.completion.prompt_tokens,
            "completion_tokens": self.completion.completion_tokens,
            "attempts": self.attempts,
        }


def call_llm(
    complete: Callable[[str], Completion],
    prompt: str,
    *,
    limiter: RateLimiter | None,
    max_retries: int,
    deadline: float | None,
    cancel: threading.Event | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S,
) -> CallOutcome:
    """Call ``complete(prompt)`` paced by ``limiter`` (None: not paced), retried on transient
    failures at most ``max_retries`` times, never waiting more than ``max_retry_wait_s`` at
    once, and never past ``deadline`` (``time.monotonic()``).
    ``on_retry`` hears of each retried failure too."""
    tokens = estimate_tokens(prompt)
    waited = 0.0
    backoff = 0.0
    latency = 0.0

    def attempt() -> Completion:
        nonlocal waited, latency
        if limiter is not None:
            waited += limiter.acquire(tokens, deadline, cancel=cancel)
        start = time.perf_counter()
        answer = complete(prompt)
        latency = time.perf_counter() - start
        return answer

    def retrying(event: RetryEvent) -> None:
        nonlocal backoff
        backoff += event.wait_s
        if limiter is not None and event.status_code == 429:
            limiter.on_rate_limited(event.retry_after)
        if on_retry is not None:
            on_retry(event)

    completion, attempts = call_with_retries(
        attempt,
        max_retries=max_retries,
        deadline=deadline,
        on_retry=retrying,
        sleep=time.sleep,
        base_delay=base_delay,
        max_delay=max_delay,
        cancel=cancel,
        max_retry_wait_s=max_retry_wait_s,
    )
    if limiter is not None:
        limiter.on_success()
        # The bucket was charged the estimated prompt; charge what the answer says on top.
        limiter.charge(completion.completion_tokens + max(0, completion.prompt_tokens - tokens))
    return CallOutcome(completion, attempts, waited, backoff, latency)
