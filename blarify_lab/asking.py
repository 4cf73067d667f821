"""Asking the LLM about one node: the paced, retried call, the grounding check, the repair.

::

    asker = Asker(adapter, llm, repair_ungrounded=1)
    description, truncated = asker.ask(run, node_id, rendered, settings)  # node_call.ask_llm
    description, truncated, grounding = asker.document(run, node_id, rendered, content,
                                                       child_paths, settings)

``document`` asks, checks every name the answer uses (``grounding.check_grounding``) and, with
``repair_ungrounded=n``, asks up to ``n`` more times with the names that do not exist, keeping
the answer with the better ratio. Every call, a repair too, counts in the session's LLM calls,
attempts, tokens and cost. A chat model whose ``complete`` takes ``system=`` (``OpenAIChat``)
gets the system message in its own role; any other provider gets it ahead of the prompt.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from .errors import BudgetExceededError
from .grounding import Grounding, check_grounding
from .llm import LLMAdapter
from .node_call import CallSettings, ask_llm
from .prompt_kinds import RenderedPrompt
from .prompts import ChildText, NodeContent
from .scheduler import SessionRun
from .usage import Completion

__all__ = ["Asker", "ground", "grounding_fields", "made_doc", "repair_prompt"]


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
    """One processor's way of asking: its provider (the system message in its own role when
    the provider's ``complete`` takes ``system=``) and how many repairs to ask for."""

    def __init__(self, adapter: LLMAdapter, llm: object, repair_ungrounded: int = 0) -> None:
        self.adapter = adapter
        self.repair_ungrounded = repair_ungrounded
        own = getattr(llm, "complete", None)
        self._chat = own if callable(own) and _takes_system(own) else None

    def completer(self, system: str) -> Callable[[str], Completion]:
        """``complete(user_prompt)`` that sends ``system`` too."""
        chat = self._chat
        if system and chat is not None:
            return lambda user: _as_completion(user, chat(user, system=system))
        if system:
            return lambda user: self.adapter.complete(f"{system}\n\n{user}")
        return self.adapter.complete

    def ask(
        self, run: SessionRun, node_id: int, rendered: RenderedPrompt, settings: CallSettings
    ) -> tuple[str, bool]:
        """``node_call.ask_llm`` of the rendered prompt: ``(description, truncated)``."""
        return ask_llm(run, node_id, rendered.user, self.completer(rendered.system), settings)

    def document(
        self,
        run: SessionRun,
        node_id: int,
        rendered: RenderedPrompt,
        content: NodeContent,
        child_paths: Sequence[str],
        settings: CallSettings,
    ) -> tuple[str, bool, Grounding | None]:
        """Ask, check the answer's names, and repair it when asked to: ``(description,
        truncated, grounding)``; the grounding is None when the call failed. A repair that
        fails, or finds the budget spent, keeps the first answer."""
        description, truncated = self.ask(run, node_id, rendered, settings)
        if node_id in run.errors:
            return description, truncated, None
        grounding = ground(description, content, child_paths)
        for _ in range(self.repair_ungrounded):
            if not grounding.ungrounded:
                break
            again = repair_prompt(rendered, description, grounding.ungrounded)
            try:
                retry, cut = self.ask(run, node_id, again, settings)
            except BudgetExceededError:
                break
            if run.errors.pop(node_id, None) is not None:
                break
            second = ground(retry, content, child_paths)
            if _better(grounding, second):
                description, truncated, grounding = retry, cut, second
        return description, truncated, grounding


def ground(description: str, content: NodeContent, child_paths: Sequence[str]) -> Grounding:
    """``check_grounding`` of a description against its node and the node's children."""
    return check_grounding(description, content.source, child_paths, node_path=content.path)


def grounding_fields(grounding: Grounding | None) -> dict[str, object]:
    """What a documentation node stores of its grounding: ``ungrounded`` (the names not found,
    a list) and ``grounded_ratio`` (None when the description names nothing)."""
    if grounding is None:
        return {"ungrounded": [], "grounded_ratio": None}
    return {"ungrounded": list(grounding.ungrounded), "grounded_ratio": grounding.ratio}


def made_doc(
    node_id: int,
    description: str,
    made_from: str,
    model: str,
    children: Sequence[ChildText],
    truncated: bool = False,
    grounding: Grounding | None = None,
) -> dict[str, object]:
    """What storing one node's description writes (``advance_session_query``'s ``$docs``;
    ``truncated``: the answer was cut short, so it is asked again next time; the grounding's
    ``ungrounded`` and ``grounded_ratio``)."""
    return {
        "node_id": node_id,
        "description": description,
        "input_hash": made_from,
        "model": model,
        "truncated": truncated,
        "info_type": "parent_analysis" if children else "leaf_analysis",
        **grounding_fields(grounding),
    }
