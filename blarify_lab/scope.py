"""A session's scope, read into memory once: its nodes marked ``pending``, its structure (the
edges inside it), its cycles cut, and each node's priority (the chain of work above it).

A ``"graph"`` scope is marked in one query, a ``"subtree"`` one level by level; then one query
reads the edges, and one more the scope's ids only when some node has no edge inside the scope.
The client's cost is per value returned, so this stays small. Where this model's past calls
show that its time grows with the prompt (``latency_model``), one more query reads each node's
source length and chains are weighed in predicted seconds instead of nodes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

from . import queries as q
from . import read_queries as rq
from .db import GraphDB
from .errors import NodeNotFoundError, QueryError
from .graph import DependencyGraph, depths
from .latency_model import LatencyModel
from .migration import adopt_documentation
from .priorities import chain_above
from .session import NodeRecord
from .session_run import SessionRun

__all__ = ["PROMPT_OVERHEAD_TOKENS", "ScopeWarning", "break_cycles", "read_scope"]

log = logging.getLogger("blarify_lab")

PROMPT_OVERHEAD_TOKENS = 60  # a prompt's own words around the source and the children


class ScopeWarning(UserWarning):
    """A session documents more than its root reaches (``scope="graph"``)."""


def read_scope(db: GraphDB, run: SessionRun, latency: LatencyModel | None = None) -> None:
    """Mark the scope pending, read its structure into ``run.graph``, cut its cycles and rank
    its nodes (``run.priority``); ``latency`` (this model's past calls) weighs the ranking."""
    session = run.session
    sid = session.session_id
    expected = _mark_scope(db, run)
    if run.reuse:  # before any documentation is looked up by key
        _ensure_documentation_key(db, run)
    edges = db.run_query(q.scope_edges_query(sid, session.relationship_type), {"session_id": sid})
    grouped: dict[int, list[int]] = {}
    for row in edges:  # one row (none on a backend that returns no row for no match)
        for parent, child in zip(row["parents"], row["children"], strict=True):  # ids: ints
            kids = grouped.get(parent)
            if kids is None:
                grouped[parent] = [child]
            else:
                kids.append(child)
    structure = list(grouped.items())
    graph = DependencyGraph(structure)
    if len(graph) < expected:  # nodes with no edge in the scope
        rows = db.run_query(q.scope_node_ids_query(sid), {"session_id": sid})
        graph = DependencyGraph(structure, (int(i) for i in rows[0]["node_ids"]))
    if len(graph) != expected:
        log.warning(
            "session %s: %d nodes marked but %d found; was the graph changed meanwhile?",
            sid,
            expected,
            len(graph),
        )
    run.graph = graph
    run.text_users = {i: len(ps) for i, ps in graph.parents.items()}
    run.text_users[run.root_id] = run.text_users.get(run.root_id, 0) + 1
    found = depths(graph.children, run.root_id)
    if session.scope == "graph":
        _say_scope(run, len(graph), len(found))
    session.begin({i: NodeRecord(node_id=i, depth=found.get(i)) for i in graph.children})
    if run.root_id not in graph:
        raise NodeNotFoundError(f"node {session.root_path!r} is not part of the session's scope")
    break_cycles(db, run)  # before the start: no worker ever idles waiting for a stall
    run.priority = chain_above(graph.parents, _weights(db, run, latency))


def break_cycles(db: GraphDB, run: SessionRun) -> list[int]:
    """Cut every cycle among the pending nodes (``graph.break_cycles``); returns the nodes that
    became ready.

    Called when the structure is read, every cyclic component is pending, so the cut is the
    one a stall would make. The children a cut leaves behind are not claimed yet, so their
    paths, which the prompts of the nodes above them name, are read now (one read-only query,
    only when there are cycles)."""
    released = run.graph.break_cycles()
    run.session.cycles = len(run.graph.cycle_sources)
    nodes = run.session.nodes
    unnamed = sorted(
        {
            child
            for source in run.graph.cycle_sources
            for child in run.graph.children.get(source, ())
            if not nodes[child].path
        }
    )
    if unnamed:
        rows = db.run_query(rq.nodes_contents_query(run.schema), {"node_ids": unnamed})
        for row in rows:
            record = nodes.get(int(row["node_id"]))
            if record is not None and not record.path:
                record.path = str(row["path"])
                record.labels = tuple(str(label) for label in row["labels"])
                record.name = row["name"] if isinstance(row["name"], str) else None
    return released


def _weights(
    db: GraphDB, run: SessionRun, latency: LatencyModel | None
) -> Callable[[int], float] | None:
    """Each node's predicted seconds, when this model's time was measured to grow with the
    prompt; ``None`` (every node weighs one) otherwise."""
    if latency is None or not latency.measured or latency.per_token_s <= 0:
        return None
    sid = run.session.session_id
    rows = db.run_query(rq.scope_text_sizes_query(sid), {"session_id": sid})
    chars = dict(zip(rows[0]["node_ids"], rows[0]["chars"], strict=True)) if rows else {}
    children = run.graph.children
    answer = latency.completion_tokens

    def weight(node: int) -> float:
        asked = PROMPT_OVERHEAD_TOKENS + -(-int(chars.get(node, 0)) // 4)
        return latency.seconds(asked + answer * len(children.get(node, ())))

    return weight


def _mark_scope(db: GraphDB, run: SessionRun) -> int:
    """Mark the session's nodes ``pending``; returns how many were marked."""
    session, schema = run.session, run.schema
    sid = session.session_id
    params: dict[str, object] = {"session_id": sid, **schema.params()}
    if session.scope == "graph":
        rows = db.run_query(q.initialize_processing_session_query(sid, schema), params)
        return int(rows[0]["count"]) if rows else 0
    rows = db.run_query(q.mark_nodes_query(sid, schema), {**params, "node_ids": [run.root_id]})
    frontier = [int(r["node_id"]) for r in rows]
    marked = len(frontier)
    expand = q.expand_scope_query(sid, session.relationship_type, schema)
    while frontier:  # one round trip per level: each node is marked, and expanded, once
        rows = db.run_query(expand, {**params, "frontier": frontier})
        frontier = [int(r["node_id"]) for r in rows]
        marked += len(frontier)
    return marked


def _ensure_documentation_key(db: GraphDB, run: SessionRun) -> None:
    """One documentation node per code node, found by index: Neo4j's uniqueness constraint,
    or FalkorDB's index (which exists after the first session); then the tenant's
    documentation stored before stable keys is carried over (once)."""
    if run.adopt:  # on Neo4j, the constraint on internal ids is dropped first
        adopt_documentation(db, run.schema)
    if getattr(db, "backend", None) == "neo4j":
        db.run_query(q.documentation_constraint_query(), {})
        return
    try:
        db.run_query(q.documentation_index_query(), {})
    except QueryError as err:
        if "already indexed" not in err.backend_message:
            raise


def _say_scope(run: SessionRun, total: int, inside: int) -> None:
    """A scope="graph" session that reaches beyond the root's subtree says so first."""
    session = run.session
    session.outside_subtree = max(total - inside, 0)
    if session.outside_subtree:
        warnings.warn(
            f"session {session.session_id}: scope='graph' documents all {total} code nodes "
            f"of the graph, of which {session.outside_subtree} lie outside the {inside} "
            f"that {session.root_path!r} reaches; pass scope='subtree' to document only "
            "those",
            ScopeWarning,
            stacklevel=4,
        )
