"""The in-memory side of one running session, shared by its scheduler and its workers.

Workers never touch the database: what they need (content, children's descriptions, the
rate limiter, the budget) travels in ``SessionRun``; a finished task's future says which node
it ran and its ``(text, ok)`` or error (``Outcome``).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from .budget import CallBudget
from .graph import DependencyGraph
from .pacing import RateLimiter
from .prompts import ChildText, NodeContent, compose_text
from .schema import GraphSchema
from .session import ProcessingSession

__all__ = ["Completions", "Outcome", "SessionRun"]

Outcome = tuple[int, "tuple[str, bool] | Exception"]  # a node and its (text, ok), or its error
Completions = queue.SimpleQueue[Future[Outcome] | None]  # finished tasks (dispatch.py)


@dataclass
class SessionRun:
    """The in-memory side of one running session (the scheduler's, and its workers')."""

    session: ProcessingSession
    root_id: int
    cancel: threading.Event
    completions: Completions  # finished futures (done-callbacks); None only wakes the loop
    graph: DependencyGraph = field(default_factory=lambda: DependencyGraph(()))
    content: dict[int, NodeContent] = field(default_factory=dict[int, NodeContent])
    descriptions: dict[int, str] = field(default_factory=dict[int, str])
    texts: dict[int, str] = field(default_factory=dict[int, str])
    text_users: dict[int, int] = field(default_factory=dict[int, int])
    errors: dict[int, str] = field(default_factory=dict[int, str])
    path_ids: dict[str, int] = field(default_factory=dict[str, int])
    unflushed: dict[str, list[int]] = field(default_factory=dict[str, list[int]])
    last_flush: float = 0.0
    # durable documentation: what the graph holds for claimed nodes, and what to write
    limiter: RateLimiter | None = None  # the session's LLM pacing, shared by its workers
    budget: CallBudget | None = None  # the session's max_cost_usd, reserved call by call
    deadline: float | None = None  # time.monotonic() when the session times out
    reuse: bool = True  # False with force=True or save_documentation=False
    stored: dict[int, tuple[str, str]] = field(default_factory=dict[int, tuple[str, str]])
    unlinked: set[int] = field(default_factory=set[int])  # stored, but describing no node yet
    made: dict[int, dict[str, object]] = field(default_factory=dict[int, dict[str, object]])
    outcome: dict[int, tuple[str, bool]] = field(default_factory=dict[int, tuple[str, bool]])
    docs: list[dict[str, object]] = field(default_factory=list[dict[str, object]])
    priority: dict[int, float] = field(default_factory=dict[int, float])  # chain above a node
    schema: GraphSchema = field(default_factory=GraphSchema)  # the graph's shape and tenant
    adopt: bool = True  # carry unkeyed documentation over to stable keys first (see migration)
    docs_at: float = 0.0  # time.monotonic() when documentation was last written

    def children(self, node_id: int) -> list[ChildText]:
        """The node's children as its prompt and text see them (None where not known); in a
        graph whose definitions share a file's path (blarify's), named by kind and name too."""
        nodes = self.session.nodes
        named = self.schema.name != "default"
        return [
            ChildText(
                nodes[c].path,
                self.descriptions.get(c),
                self.texts.get(c),
                kind=(nodes[c].labels[0] if nodes[c].labels else None) if named else None,
                name=nodes[c].name if named else None,
            )
            for c in self.graph.children.get(node_id, ())
        ]

    def text(
        self,
        node_id: int,
        description: str,
        max_text_chars: int,
        children: list[ChildText] | None = None,
    ) -> str:
        """The node's text: its path, ``description`` and its children's texts."""
        path = self.session.nodes[node_id].path
        kids = self.children(node_id) if children is None else children
        return compose_text(path, description, kids, max_text_chars=max_text_chars)
