"""Deep hierarchies scale: a long CONTAINS chain costs linear work in its nodes.

No wall clock: the round trips are counted; every query sent once per level (or per batch)
is checked against FalkorDB's own plan, which must never scan all nodes (a scan per level
made a "subtree" walk quadratic); and documentation is written in batches, not by one write
query per node (each such query costs FalkorDB more the more it created before, which made a
chain quadratic whatever the scope). ``benchmarks/deep.py`` measures the time.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Literal

import pytest

import blarify_lab as bl
from benchmarks.run import build, chain
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.scheduler import DOCS_BATCH, FLUSH_INTERVAL_S

from .helpers import QueryRecorder, no_leftovers

SCANS = ("All Node Scan", "Node By Label Scan")


def _run(
    db: GraphDB, levels: int, scope: Literal["graph", "subtree"] = "graph"
) -> tuple[QueryRecorder, QueryRecorder, str]:
    graph = chain(levels)
    build(db, graph)
    proc = bl.RecursiveDFSProcessor(
        db, lambda prompt: "ok", max_workers=4, progress=False, scope=scope
    )
    with QueryRecorder(db) as estimated:
        frame = proc.estimate(graph.root)
    assert int(frame["nodes"].iloc[0]) == levels
    with QueryRecorder(db) as processed:
        text = proc.process_node(graph.root)
    session = proc.last_session
    assert session is not None and session.counts["completed"] == levels
    return estimated, processed, text


def _per_level(recorded: QueryRecorder) -> list[tuple[str, dict[str, Any]]]:
    """One example call of each query sent more than a handful of times."""
    counts = Counter(recorded.queries)
    first: dict[str, dict[str, Any]] = {}
    for query, params in recorded.calls:
        first.setdefault(query, params)
    return [(query, first[query]) for query, n in counts.items() if n > 10]


def test_a_2000_level_chain_completes_with_round_trips_linear_in_depth(
    db_manager: GraphDB,
) -> None:
    start = time.monotonic()
    estimated, processed, text = _run(db_manager, 2_000)
    elapsed = time.monotonic() - start
    assert text.startswith("/c0")
    assert no_leftovers(db_manager)
    assert len(estimated.calls) <= 2_000 + 10
    assert len(processed.calls) <= 3 * 2_000 + 20
    stored = db_manager.run_query("MATCH (d:DOCUMENTATION) RETURN count(d) AS n", {})
    assert stored[0]["n"] == 2_000, "every node's documentation is stored"
    writes = [p for q, p in processed.calls if "UNWIND $docs" in q and p["docs"]]
    # at most one write per DOCS_BATCH nodes, or per FLUSH_INTERVAL_S: never one per node
    assert len(writes) <= 2_000 // DOCS_BATCH + elapsed / FLUSH_INTERVAL_S + 3, len(writes)


def test_round_trips_grow_linearly_with_depth(db_manager: GraphDB) -> None:
    short_est, short_proc, _ = _run(db_manager, 250, scope="subtree")
    db_manager.run_query("MATCH (n) DETACH DELETE n", {})
    long_est, long_proc, _ = _run(db_manager, 1_000, scope="subtree")
    assert len(long_est.calls) <= 4 * len(short_est.calls) + 10
    assert len(long_proc.calls) <= 4 * len(short_proc.calls) + 10


def test_no_query_sent_per_level_scans_the_graph(db_manager: GraphDB) -> None:
    if not isinstance(db_manager, FalkorDBManager):
        pytest.skip("reads FalkorDB's query plans")
    estimated, processed, _ = _run(db_manager, 300, scope="subtree")
    repeated = _per_level(estimated) + _per_level(processed)
    assert len(repeated) >= 3, "the scope walks, the estimate's walk and the advance query"
    graph = db_manager._graph  # pyright: ignore[reportPrivateUsage]
    for query, params in repeated:
        plan = str(graph.explain(query, params))
        assert not any(scan in plan for scan in SCANS), f"{query}\n{plan}"
