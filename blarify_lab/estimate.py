"""What a session would cost, before paying: which nodes would reuse their stored
documentation, how many LLM calls and tokens the rest would take, and at what price.

Read-only queries (the scope's edges, a level at a time for a subtree, and its nodes with
their stored documentation);
then the session is replayed in memory in the order the scheduler would take, cycles cut the
same way. A node whose children are all reused has a prompt known exactly: it is reused when
that prompt's hash is the stored one. A node above a node that will be asked again cannot
know its prompt in advance, so it counts as a call.

Completion lengths and call times come from what this model's past calls took (stored with
their documentation, ``latency_model``); ``wall_s`` replays the scheduler over the DAG with
those times, the workers and the rate limits (``simulate``). Each such figure says whether it
was ``measured`` or ``assumed`` (no past call of this model).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import queries as q
from . import read_queries as rq
from .db import GraphDB
from .graph import DependencyGraph, depths
from .latency_model import ASSUMED_COMPLETION_TOKENS
from .measurements import load_latency_model
from .prompt_kinds import PromptSet
from .prompts import CYCLE_MARK, ChildText, NodeContent
from .schema import GraphSchema
from .scope import ScopeWarning
from .simulate import simulate_wall
from .usage import cost_usd, estimate_tokens

__all__ = ["ESTIMATE_COLUMNS", "estimate_session"]

ESTIMATE_COLUMNS = [
    "nodes",
    "cached",
    "llm_calls",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "wall_s",
    "completion_tokens_basis",
    "wall_s_basis",
]
DEFAULT_COMPLETION_TOKENS = ASSUMED_COMPLETION_TOKENS  # no measurement, no stored description
PER_NODE_S = 0.0002  # the scheduler's own time per node (measured: 5,000-7,000 no-wait nodes/s)


@dataclass
class _Node:
    content: NodeContent
    doc_hash: str | None
    doc_description: str | None


def _edges(rows: list[dict[str, Any]]) -> list[tuple[int, list[int]]]:
    return [(int(r["parent"]), [int(c) for c in r["children"]]) for r in rows]


def _subtree_edges(
    db: GraphDB, root_id: int, relationship_type: str, schema: GraphSchema
) -> list[tuple[int, list[int]]]:
    """The edges below ``root_id``, read one level at a time (each node expanded once)."""
    query = rq.children_query(relationship_type, schema)
    seen, frontier = {root_id}, [root_id]
    edges: list[tuple[int, list[int]]] = []
    while frontier:
        level = _edges(db.run_query(query, {"frontier": frontier, **schema.params()}))
        edges.extend(level)
        frontier = sorted({c for _, kids in level for c in kids} - seen)
        seen.update(frontier)
    return edges


def _child(content: NodeContent, description: str | None, named: bool) -> ChildText:
    """A child as the scheduler shows it in its parent's prompt (``SessionRun.children``)."""
    if not named:
        return ChildText(content.path, description, None)
    kind = content.labels[0] if content.labels else None
    name = content.name if isinstance(content.name, str) else None
    return ChildText(content.path, description, None, kind=kind, name=name)


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
    schema: GraphSchema | None = None,
    prompts: PromptSet | None = None,
    max_workers: int = 1,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    author: str | None = None,
) -> pd.DataFrame:
    """One row: ``nodes``, ``cached``, ``llm_calls``, ``prompt_tokens``, ``completion_tokens``
    (estimated), ``cost_usd`` (NaN without prices) and ``wall_s`` of a session from the node
    ``root_id``, with ``completion_tokens_basis`` and ``wall_s_basis`` (``measured`` from this
    model's past calls, or ``assumed``). Writes nothing. ``prompts`` are the processor's
    (``PromptSet()`` by default)."""
    prompts = prompts or PromptSet()
    schema = schema or GraphSchema()
    params = schema.params()
    latency = load_latency_model(db, author or model)  # ``author``: the docs' ``model``
    if scope == "graph":
        rows = db.run_query(rq.graph_contents_query(schema), params)
        edges = _edges(db.run_query(rq.graph_structure_query(relationship_type, schema), params))
    else:
        edges = _subtree_edges(db, root_id, relationship_type, schema)
        ids = sorted({root_id} | {c for _, kids in edges for c in kids})
        rows = db.run_query(rq.nodes_contents_query(schema), {"node_ids": ids})
    nodes: dict[int, _Node] = {}
    for row in rows:
        labels = tuple(str(label) for label in row["labels"])
        content = NodeContent(str(row["path"]), labels, row["name"], row["text"])
        doc_hash = None if row.get("doc_truncated") is True else row["doc_hash"]  # asked again
        node = _Node(content, doc_hash, row["doc_description"])
        nodes.setdefault(int(row["node_id"]), node)
    graph = DependencyGraph(
        ((p, [c for c in kids if c in nodes]) for p, kids in edges if p in nodes), nodes
    )
    if scope == "graph" and root_id in nodes:
        _say_scope(len(nodes), len(depths(graph.children, root_id)), nodes[root_id].content.path)
    named = schema.name != "default"  # children named by kind and name (as the scheduler)
    descriptions: dict[int, str] = {}
    unknown: set[int] = set()  # nodes to be asked again: their new descriptions are unknown
    cached = calls = prompt_tokens = completion_tokens = 0
    graph.break_cycles()  # as the scheduler does, when the structure is read
    unfinished = dict(graph.unfinished)
    seconds: dict[int, float] = {}
    tokens: dict[int, int] = {}
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
            children = [_child(nodes[c].content, descriptions.get(c), named) for c in kids]
            rendered = prompts.render(node.content, children, max_text_chars=max_text_chars)
            knowable = not any(c in unknown for c in kids)
            stored = node.doc_description
            if reuse and knowable and stored is not None and node.doc_hash == rendered.hash(model):
                cached += 1
                description = stored
            else:
                calls += 1
                asked = estimate_tokens(rendered.text)
                answer = latency.completion_tokens
                if not latency.measured and stored:
                    answer = estimate_tokens(stored)
                prompt_tokens += asked
                completion_tokens += answer
                seconds[node_id] = latency.seconds(asked, answer)
                tokens[node_id] = asked + answer
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
        "wall_s": simulate_wall(
            graph.parents,
            unfinished,
            seconds,
            max_workers,
            tokens=tokens,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            per_node_s=PER_NODE_S,
        ),
        "completion_tokens_basis": "measured" if latency.measured else "assumed",
        "wall_s_basis": "measured" if latency.measured else "assumed",
    }
    return pd.DataFrame([row], columns=ESTIMATE_COLUMNS)


def _say_scope(total: int, inside: int, root_path: str) -> None:
    """As a session would: a ``scope="graph"`` estimate beyond the root's subtree says so."""
    if inside < total:
        warnings.warn(
            f"estimate: scope='graph' counts all {total} code nodes of the graph, of which "
            f"{total - inside} lie outside the {inside} that {root_path!r} reaches; pass "
            "scope='subtree' to count only those",
            ScopeWarning,
            stacklevel=4,
        )
