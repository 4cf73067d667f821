"""What a session would cost, before paying: which nodes would reuse their stored
documentation, how many LLM calls and tokens the rest would take, and at what price.

Read-only queries (the scope's edges, a level at a time for a subtree, and its nodes with
their stored documentation);
then the session is replayed in memory in the order the scheduler would take, cycles cut the
same way. A node whose children are all reused has a prompt known exactly: it is reused when
that prompt's hash is the stored one. A node above a node that will be asked again cannot
know its prompt in advance, so it counts as a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import queries as q
from .db import GraphDB
from .graph import DependencyGraph
from .prompts import CYCLE_MARK, ChildText, NodeContent, build_prompt, input_hash
from .usage import cost_usd, estimate_tokens

__all__ = ["ESTIMATE_COLUMNS", "estimate_session"]

ESTIMATE_COLUMNS = [
    "nodes",
    "cached",
    "llm_calls",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
]
DEFAULT_COMPLETION_TOKENS = 150  # for a node with no stored description to go by


@dataclass
class _Node:
    content: NodeContent
    doc_hash: str | None
    doc_description: str | None


def _edges(rows: list[dict[str, Any]]) -> list[tuple[int, list[int]]]:
    return [(int(r["parent"]), [int(c) for c in r["children"]]) for r in rows]


def _subtree_edges(
    db: GraphDB, root_id: int, relationship_type: str
) -> list[tuple[int, list[int]]]:
    """The edges below ``root_id``, read one level at a time (each node expanded once)."""
    query = q.children_query(relationship_type)
    seen, frontier = {root_id}, [root_id]
    edges: list[tuple[int, list[int]]] = []
    while frontier:
        level = _edges(db.run_query(query, {"frontier": frontier}))
        edges.extend(level)
        frontier = sorted({c for _, kids in level for c in kids} - seen)
        seen.update(frontier)
    return edges


def estimate_session(
    db: GraphDB,
    root_id: int,
    *,
    scope: q.Scope,
    relationship_type: str,
    model: str,
    reuse: bool,
    max_text_chars: int,
    prices: Mapping[str, float] | None,
) -> pd.DataFrame:
    """One row: ``nodes``, ``cached``, ``llm_calls``, ``prompt_tokens``, ``completion_tokens``
    (estimated) and ``cost_usd`` (NaN without prices) of a session from the node ``root_id``.
    Writes nothing."""
    if scope == "graph":
        rows = db.run_query(q.graph_contents_query(), {})
        edges = _edges(db.run_query(q.graph_structure_query(relationship_type), {}))
    else:
        edges = _subtree_edges(db, root_id, relationship_type)
        ids = sorted({root_id} | {c for _, kids in edges for c in kids})
        rows = db.run_query(q.nodes_contents_query(), {"node_ids": ids})
    nodes: dict[int, _Node] = {}
    for row in rows:
        labels = tuple(str(label) for label in row["labels"])
        content = NodeContent(str(row["path"]), labels, row["name"], row["text"])
        node = _Node(content, row["doc_hash"], row["doc_description"])
        nodes.setdefault(int(row["node_id"]), node)
    graph = DependencyGraph(
        ((p, [c for c in kids if c in nodes]) for p, kids in edges if p in nodes), nodes
    )
    descriptions: dict[int, str] = {}
    unknown: set[int] = set()  # nodes to be asked again: their new descriptions are unknown
    cached = calls = prompt_tokens = completion_tokens = 0
    graph.break_cycles()  # as the scheduler does, when the structure is read
    ready = graph.ready()
    while ready or graph.pending:
        if not ready:
            ready = graph.break_cycles()
            continue
        next_ready: list[int] = []
        for node_id in ready:
            graph.claim(node_id)
            node = nodes[node_id]
            kids = graph.children.get(node_id, ())
            children = [ChildText(nodes[c].content.path, descriptions.get(c), None) for c in kids]
            prompt = build_prompt(node.content, children, max_text_chars=max_text_chars)
            knowable = not any(c in unknown for c in kids)
            stored = node.doc_description
            if (
                reuse
                and knowable
                and stored is not None
                and node.doc_hash == input_hash(model, prompt)
            ):
                cached += 1
                description = stored
            else:
                calls += 1
                prompt_tokens += estimate_tokens(prompt)
                completion_tokens += (
                    estimate_tokens(stored) if stored else DEFAULT_COMPLETION_TOKENS
                )
                unknown.add(node_id)
                description = stored or ""
            if node_id in graph.cycle_sources:
                description = f"{CYCLE_MARK} {description}"
            descriptions[node_id] = description
            next_ready.extend(graph.finish(node_id))
        ready = sorted(next_ready)
    cost = (
        cost_usd(prompt_tokens, completion_tokens, prices) if prices is not None else float("nan")
    )
    row = {
        "nodes": len(nodes),
        "cached": cached,
        "llm_calls": calls,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": cost,
    }
    return pd.DataFrame([row], columns=ESTIMATE_COLUMNS)
