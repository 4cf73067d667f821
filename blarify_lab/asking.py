"""Asking the LLM about one node: the paced, retried call, the grounding check, the repair.

::

    asker = Asker(adapter, llm, settings)
    description = asker.ask(run, node_id, rendered)           # "[ERROR] ..." on failure
    description, grounding = asker.document(run, node_id, rendered, content, child_paths)

``document`` asks, checks every name the answer uses (``grounding.check_grounding``) and, with
``repair_ungrounded=n``, asks up to ``n`` more times with the names that do not exist, keeping
the answer with the better ratio. Every call, a repair too, counts in the session's LLM calls,
attempts, tokens and cost. A chat model whose ``complete`` takes ``system=`` (``OpenAIChat``)
gets the system message in its own role; any other provider gets it ahead of the prompt.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BudgetExceededError, LLMCallError
from .grounding import Grounding, check_grounding
from .llm import LLMAdapter
from .llm_calls import call_llm
from .prompt_kinds import RenderedPrompt
from .prompts import ERROR_MARK, NodeContent, clean_description, error_description
from .session import describe_error
from .usage import Completion, cost_usd

if TYPE_CHECKING:
    from .scheduler import SessionRun

__all__ = ["AskSettings", "Asker", "ground", "grounding_fields", "repair_prompt"]


@dataclass(frozen=True, slots=True)
class AskSettings:
    """What every call of a processor shares."""

    max_retries: int
    max_description_chars: int
    prices: Mapping[str, float] | None = None
    max_cost_usd: float | None = None
    repair_ungrounded: int = 0


def repair_prompt(
    rendered: RenderedPrompt, answer: str, ungrounded: Sequence[str]
) -> RenderedPrompt:
    """The prompt that asks again: the first prompt, the answer given and the names in it
    that the code does not have."""
    names = "\n".join(f"- {name}" for name in ungrounded)
    user = (
        f"{rendered.user}\n## Previous answer\n{answer.strip()}\n## Names that do not exist\n"
        f"{names}\nThese names are not in the source or among the children. Write the "
        "documentation again, naming only identifiers that appear above."
    )
    return RenderedPrompt(rendered.system, user)


def _takes_system(complete: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(complete).parameters
    except (TypeError, ValueError):
        return False
    return "system" in params


def _as_completion(prompt: str, value: object) -> Completion:
    if isinstance(value, Completion):
        return value
    text = getattr(value, "content", value)
    if not isinstance(text, str):
        raise TypeError(f"the LLM provider returned {type(value).__name__}, expected Completion")
    return Completion.estimate(prompt, text)


def _better(a: Grounding, b: Grounding) -> bool:
    """``b`` is better grounded than ``a`` (a description that names nothing counts as 1.0)."""
    ra = 1.0 if a.ratio is None else a.ratio
    rb = 1.0 if b.ratio is None else b.ratio
    return (rb, -len(b.ungrounded)) > (ra, -len(a.ungrounded))


class Asker:
    """One processor's way of asking: its provider, settings and the session's pacing."""

    def __init__(self, adapter: LLMAdapter, llm: object, settings: AskSettings) -> None:
        self.adapter = adapter
        self.settings = settings
        own = getattr(llm, "complete", None)
        self._chat = own if callable(own) and _takes_system(own) else None

    def _completer(self, system: str) -> Callable[[str], Completion]:
        chat = self._chat
        if system and chat is not None:
            return lambda user: _as_completion(user, chat(user, system=system))
        if system:
            return lambda user: self.adapter.complete(f"{system}\n\n{user}")
        return self.adapter.complete

    def ask(self, run: SessionRun, node_id: int, rendered: RenderedPrompt) -> str:
        """The LLM's description of one node, paced by the session's rate limits and retried
        on transient failures; ``[ERROR] ...`` (and the error noted) if it fails for good.
        The answer is bounded and cleaned before it is kept."""
        session = run.session
        budget = self.settings.max_cost_usd
        if budget is not None and (session.cost_usd or 0.0) >= budget:
            # spent: a node claimed before that, but not yet started, is not asked
            raise BudgetExceededError(session.session_id, session.cost_usd or 0.0, budget)
        session.called_llm()
        try:
            outcome = call_llm(
                self._completer(rendered.system),
                rendered.user,
                limiter=run.limiter,
                max_retries=self.settings.max_retries,
                deadline=run.deadline,
                cancel=run.cancel,
            )
        except LLMCallError as err:
            session.used(node_id, attempts=err.attempts)
            cause = err.__cause__ if err.__cause__ is not None else err
            run.errors[node_id] = _failure(err, cause)
            return f"{ERROR_MARK} {run.errors[node_id]}"
        except Exception as err:  # cancelled while waiting for a rate limit, or a bug
            session.used(node_id, attempts=1)
            run.errors[node_id] = describe_error(err)
            return error_description(err)
        usage = outcome.completion
        cost = None
        if self.settings.prices is not None:
            cost = cost_usd(usage.prompt_tokens, usage.completion_tokens, self.settings.prices)
        session.used(
            node_id,
            attempts=outcome.attempts,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            estimated=usage.estimated,
            cost_usd=cost,
            waited_s=outcome.waited_s,
        )
        description = clean_description(usage.text, self.settings.max_description_chars)
        if not description.strip():
            err = ValueError("the LLM provider returned an empty description")
            run.errors[node_id] = describe_error(err)
            return error_description(err)
        return description

    def document(
        self,
        run: SessionRun,
        node_id: int,
        rendered: RenderedPrompt,
        content: NodeContent,
        child_paths: Sequence[str],
    ) -> tuple[str, Grounding | None]:
        """Ask, check the answer's names, and repair it when asked to. ``(description,
        grounding)``; the grounding is None when the call failed."""
        description = self.ask(run, node_id, rendered)
        if node_id in run.errors:
            return description, None
        grounding = ground(description, content, child_paths)
        budget = self.settings.max_cost_usd
        for _ in range(self.settings.repair_ungrounded):
            if not grounding.ungrounded:
                break
            if budget is not None and (run.session.cost_usd or 0.0) >= budget:
                break
            retry = self.ask(
                run, node_id, repair_prompt(rendered, description, grounding.ungrounded)
            )
            if run.errors.pop(node_id, None) is not None:  # a failed repair keeps the answer
                break
            second = ground(retry, content, child_paths)
            if _better(grounding, second):
                description, grounding = retry, second
        return description, grounding


def ground(description: str, content: NodeContent, child_paths: Sequence[str]) -> Grounding:
    """``check_grounding`` of a description against its node and the node's children."""
    return check_grounding(description, content.source, child_paths, node_path=content.path)


def grounding_fields(grounding: Grounding | None) -> dict[str, object]:
    """What a documentation node stores of its grounding: ``ungrounded`` (the names not found,
    a list) and ``grounded_ratio`` (None when the description names nothing)."""
    if grounding is None:
        return {"ungrounded": [], "grounded_ratio": None}
    return {"ungrounded": list(grounding.ungrounded), "grounded_ratio": grounding.ratio}


def _failure(err: LLMCallError, cause: BaseException) -> str:
    """A failed call in one line: the original error, its HTTP status and how it ended."""
    status = f" (HTTP {err.status_code})" if err.status_code else ""
    tail = ""
    if err.attempts > 1 or err.reason != "permanent":
        reason = {"retries_exhausted": "retries exhausted", "deadline": "deadline reached"}
        tail = f" [{err.attempts} attempts, {reason.get(err.reason, err.reason)}]"
    message = " ".join((err.server_message or str(cause)).split())
    return f"{type(cause).__name__}{status}: {message}{tail}"
