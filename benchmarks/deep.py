"""Deep hierarchies: a ``CONTAINS`` chain of 1,000 to 10,000 levels, processed and estimated.

    python benchmarks/deep.py            # chains of 1k, 2k, 4k and 10k levels
    python benchmarks/deep.py --quick    # 1k and 2k

A chain is the worst case: one level, and one node ready at a time, per node. It took quadratic
time (issue 17: 3.2 / 10.6 / 31.7 / 135 s for 1k / 2k / 4k / 10k) for two reasons: each level
of a ``subtree`` walk (``expand_scope_query``; ``children_query`` for the estimate) matched its
pattern from every node of the graph (now it seeks its frontier by id), and each node's
documentation was written by its own write query, which costs FalkorDB more the more such
queries created nodes before (now documentation is written in batches, ``DOCS_BATCH``).

Both scopes (``graph``, the default, and ``subtree``) are measured. The provider answers at
once (no sleep), with 4 workers; each size runs on a fresh graph of one embedded FalkorDB. Printed, and written to ``benchmarks/results/deep.md``: seconds per node
for ``process_node`` and for ``estimate``, and round trips per node. Linear means the seconds
per node stay flat as the chain grows.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too

import blarify_lab as bl
from benchmarks.run import CountingDB, build, chain
from blarify_lab.checks import check_scope
from blarify_lab.db import FalkorDBManager

RESULTS = Path(__file__).parent / "results"
COLUMNS = [
    "scope",
    "levels",
    "process_s",
    "process_s_per_node",
    "process_round_trips",
    "estimate_s",
    "estimate_s_per_node",
    "estimate_round_trips",
]


def measure(server: FalkorDBManager, levels: int, scope: str) -> dict[str, float | int | str]:
    """One chain of ``levels`` nodes on a fresh graph: estimate, then process."""
    db = server.select_graph(f"deep_{uuid.uuid4().hex[:8]}")
    try:
        graph = chain(levels)
        build(db, graph)
        counted = CountingDB(db)
        proc = bl.RecursiveDFSProcessor(
            counted, lambda prompt: "ok", max_workers=4, progress=False, scope=check_scope(scope)
        )
        start = time.perf_counter()
        proc.estimate(graph.root)
        estimate_s = time.perf_counter() - start
        estimate_trips, counted.calls = counted.calls, 0
        start = time.perf_counter()
        proc.process_node(graph.root)
        process_s = time.perf_counter() - start
        return {
            "scope": scope,
            "levels": levels,
            "process_s": round(process_s, 2),
            "process_s_per_node": round(process_s / levels, 5),
            "process_round_trips": counted.calls,
            "estimate_s": round(estimate_s, 2),
            "estimate_s_per_node": round(estimate_s / levels, 5),
            "estimate_round_trips": estimate_trips,
        }
    finally:
        db.delete_graph()
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="Deep hierarchies: chains of 1k to 10k levels")
    parser.add_argument("--quick", action="store_true", help="1k and 2k levels only")
    args = parser.parse_args()
    sizes = [1_000, 2_000] if args.quick else [1_000, 2_000, 4_000, 10_000]
    server = bl.connect(temporary=True)
    assert isinstance(server, FalkorDBManager)
    rows: list[dict[str, float | int | str]] = []
    try:
        for scope in ("graph", "subtree"):
            for levels in sizes:
                rows.append(measure(server, levels, scope))
                print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    finally:
        server.close()
    growth = {
        scope: float(mine[-1]["process_s_per_node"]) / float(mine[0]["process_s_per_node"])
        for scope in ("graph", "subtree")
        for mine in [[r for r in rows if r["scope"] == scope]]
    }
    lines = [
        "# Deep hierarchies",
        "",
        f"`python benchmarks/deep.py{' --quick' if args.quick else ''}` on {platform.node()}: "
        f"Python {platform.python_version()}, embedded FalkorDB, a CONTAINS chain, an instant "
        f"provider, 4 workers, {date.today().isoformat()}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows),
        "",
        "Process seconds per node, largest chain against the smallest: "
        f"x{growth['graph']:.2f} (graph), x{growth['subtree']:.2f} (subtree); quadratic would "
        f"be x{sizes[-1] / sizes[0]:.0f}. Before the fix: 3.2 / 10.6 / 31.7 / 135 s for "
        "1k / 2k / 4k / 10k levels.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deep.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
