"""One node's LLM call inside a session: its budget, its retries, its usage, its answer.

::

    description, truncated = ask_llm(run, node_id, prompt, adapter.complete, settings)

The call reserves its estimated cost in the session's ``CallBudget`` (the real cost replaces
it after), is paced by the session's ``RateLimiter`` and retried by ``call_llm``; what it used
goes into the session's record of the node. A failure never raises: the description is
``[ERROR] ...`` and the node's error is noted in ``run.errors``. An answer cut short (the
model's ``finish_reason`` ``"length"``, or longer than ``max_description_chars``) comes back
with ``truncated=True``: it is stored marked, and never reused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import BudgetExceededError, LLMCallError
from .llm_calls import call_llm
from .prompts import ERROR_MARK, clean_description, error_description
from .retries import retry_after_seconds
from .scheduler import SessionRun
from .session import describe_error
from .usage import Completion, cost_usd, estimate_tokens

__all__ = ["COMPLETION_GUESS", "CallSettings", "ask_llm"]

COMPLETION_GUESS = 150  # completion tokens a call is expected to use, before one is seen


@dataclass(frozen=True, slots=True)
class CallSettings:
    """The processor's settings for each call."""

    max_retries: int
    max_retry_wait_s: float
    prices: Mapping[str, float] | None
    max_description_chars: int


def ask_llm(
    run: SessionRun,
    node_id: int,
    prompt: str,
    complete: Callable[[str], Completion],
    settings: CallSettings,
) -> tuple[str, bool]:
    """The LLM's description of one node and whether it was cut short.

    Raises ``BudgetExceededError`` (nothing asked) when the session's budget is spent."""
    session = run.session
    reserved = None
    if run.budget is not None:
        guess = cost_usd(estimate_tokens(prompt), COMPLETION_GUESS, settings.prices or {})
        reserved = run.budget.reserve(guess, cancel=run.cancel, deadline=run.deadline)
        if reserved is None:
            # spent: a node claimed before that, but not yet started, is not asked
            spent = session.cost_usd or 0.0
            raise BudgetExceededError(session.session_id, spent, run.budget.limit_usd)
    cost = None
    try:
        session.called_llm()
        answer, cost = _call(run, node_id, prompt, complete, settings)
    finally:
        if run.budget is not None and reserved is not None:
            run.budget.settle(reserved, cost)
    return answer


def _call(
    run: SessionRun,
    node_id: int,
    prompt: str,
    complete: Callable[[str], Completion],
    settings: CallSettings,
) -> tuple[tuple[str, bool], float | None]:
    """``ask_llm`` without the budget: the answer and what it cost (None without prices, or
    when the call failed)."""
    session = run.session
    try:
        outcome = call_llm(
            complete,
            prompt,
            limiter=run.limiter,
            max_retries=settings.max_retries,
            deadline=run.deadline,
            cancel=run.cancel,
            max_retry_wait_s=settings.max_retry_wait_s,
        )
    except LLMCallError as err:
        session.used(node_id, attempts=err.attempts)
        cause = err.__cause__ if err.__cause__ is not None else err
        run.errors[node_id] = _failure(err, cause, settings.max_retry_wait_s)
        return (f"{ERROR_MARK} {run.errors[node_id]}", False), None
    except Exception as err:  # cancelled while waiting for a rate limit, or a bug
        session.used(node_id, attempts=1)
        run.errors[node_id] = describe_error(err)
        return (error_description(err), False), None
    usage = outcome.completion
    cost = None
    if settings.prices is not None:
        cost = cost_usd(usage.prompt_tokens, usage.completion_tokens, settings.prices)
    truncated = usage.truncated or len(usage.text) > settings.max_description_chars
    session.used(
        node_id,
        attempts=outcome.attempts,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        estimated=usage.estimated,
        cost_usd=cost,
        waited_s=outcome.waited_s,
        truncated=truncated,
    )
    run.made[node_id] = outcome.measured()  # stored with the documentation (latency_model)
    description = clean_description(usage.text, settings.max_description_chars)
    if not description.strip():
        err = ValueError("the LLM provider returned an empty description")
        run.errors[node_id] = describe_error(err)
        return (error_description(err), False), cost
    return (description, truncated), cost


def _failure(err: LLMCallError, cause: BaseException, max_wait_s: float) -> str:
    """A failed call in one line: the original error, its HTTP status and how it ended."""
    status = f" (HTTP {err.status_code})" if err.status_code else ""
    tail = ""
    if err.attempts > 1 or err.reason != "permanent":
        asked = retry_after_seconds(cause)
        reason = {
            "retries_exhausted": "retries exhausted",
            "deadline": "deadline reached",
            "retry_wait_too_long": (
                f"the server asked to wait {asked or 0:g} s, more than "
                f"max_retry_wait_s={max_wait_s:g}"
            ),
        }
        tries = f"{err.attempts} attempt{'s' if err.attempts != 1 else ''}"
        tail = f" [{tries}, {reason.get(err.reason, err.reason)}]"
    message = " ".join((err.server_message or str(cause)).split())
    return f"{type(cause).__name__}{status}: {message}{tail}"
