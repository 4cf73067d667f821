"""How close the processor gets to the physical limit, and to a batch-at-a-time baseline.

    python benchmarks/run.py            # the full matrix, a few minutes on 2 cores
    python benchmarks/run.py --quick    # graphs a tenth of the size, under a minute
    python benchmarks/run.py --uri bolt://localhost:7687   # on Neo4j instead

Each measurement runs in a fresh subprocess (so peak RSS is per case) on a fresh graph. The LLM
is simulated with ``time.sleep``: a fixed latency, or a seeded lognormal per node (mean as
given, heavy tail). The ideal lower bound is ``max(total work / workers, critical path)``;
efficiency = bound / wall. Results go to ``benchmarks/results/latest.{md,csv}``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import blarify_lab as bl
from blarify_lab import queries as q
from blarify_lab.db import GraphDB
from blarify_lab.graph import DependencyGraph
from blarify_lab.priorities import chain_above
from blarify_lab.prompts import parse_prompt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too
from benchmarks import baseline_queries as baseline

RESULTS = Path(__file__).parent / "results"


# ---------------------------------------------------------------------------------- graphs


@dataclass
class Graph:
    """A synthetic graph: paths, edges parent -> child, and the root to process from."""

    root: str
    paths: list[str]
    edges: list[tuple[str, str]]
    relationship: str = "CONTAINS"
    children: dict[str, list[str]] = field(default_factory=dict[str, list[str]])

    def __post_init__(self) -> None:
        for a, b in self.edges:
            self.children.setdefault(a, []).append(b)


def tree(branching: int, depth: int, prefix: str = "/t") -> Graph:
    paths, edges, frontier = [prefix], [], [prefix]
    for _ in range(depth):
        nxt = [f"{p}/{i}" for p in frontier for i in range(branching)]
        edges += [(p, f"{p}/{i}") for p in frontier for i in range(branching)]
        paths += nxt
        frontier = nxt
    return Graph(prefix, paths, edges)


def sized_tree(nodes: int) -> Graph:
    """A tree of about ``nodes`` nodes: branching 10 down to a last partial level."""
    paths, edges, frontier = ["/t"], [], ["/t"]
    while len(paths) < nodes:
        nxt: list[str] = []
        for p in frontier:
            for i in range(10):
                if len(paths) + len(nxt) >= nodes:
                    break
                nxt.append(f"{p}/{i}")
                edges.append((p, f"{p}/{i}"))
        paths += nxt
        frontier = nxt
    return Graph("/t", paths, edges)


def wide(children: int) -> Graph:
    kids = [f"/w/{i}" for i in range(children)]
    return Graph("/w", ["/w", *kids], [("/w", k) for k in kids])


def chain(levels: int) -> Graph:
    paths = [f"/c{i}" for i in range(levels)]
    return Graph(paths[0], paths, list(itertools.pairwise(paths)))


def call_graph(nodes: int, seed: int = 7) -> Graph:
    """A layered call graph with back edges (cycles), seeded."""
    import random

    rng = random.Random(seed)
    paths = [f"/f{i}" for i in range(nodes)]
    edges: set[tuple[str, str]] = set()
    for i in range(1, nodes):  # every function is called by an earlier one: one entry point
        edges.add((paths[rng.randrange(0, i)], paths[i]))
    for _ in range(nodes // 2):  # more calls forward, and some back: cycles
        a, b = rng.randrange(nodes), rng.randrange(nodes)
        if a != b:
            edges.add((paths[a], paths[b]))
    return Graph(paths[0], paths, sorted(edges), relationship="CALLS")


def build(db: GraphDB, graph: Graph, text_of: Callable[[str], str] | None = None) -> None:
    """Write ``graph`` as FUNCTION nodes (with ``text_of(path)`` as their source, if given)."""
    ids: dict[str, int] = {}
    for k in range(0, len(graph.paths), 5000):
        rows: list[dict[str, str]] = [
            {"path": p, "name": p.rsplit("/", 1)[-1]} for p in graph.paths[k : k + 5000]
        ]
        if text_of is not None:
            for row in rows:
                row["text"] = text_of(row["path"])
        for rec in db.run_query(q.create_nodes_query("FUNCTION"), {"rows": rows}):
            ids[str(rec["path"])] = int(rec["node_id"])
    for k in range(0, len(graph.edges), 5000):
        chunk = graph.edges[k : k + 5000]
        db.run_query(
            q.create_edges_query(graph.relationship),
            {"sources": [ids[a] for a, _ in chunk], "targets": [ids[b] for _, b in chunk]},
        )


# ------------------------------------------------------------------------------ latencies


def latency_of(path: str, mean: float, dist: str, seed: int = 11) -> float:
    """The simulated LLM time of one node: fixed, or lognormal (sigma 1) seeded by its path."""
    if dist == "fixed":
        return mean
    digest = hashlib.blake2b(f"{seed}:{path}".encode(), digest_size=8).digest()
    u1 = (int.from_bytes(digest[:4], "big") + 0.5) / 2**32
    u2 = (int.from_bytes(digest[4:], "big") + 0.5) / 2**32
    z = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
    sigma = 1.0
    return mean * math.exp(sigma * z - sigma**2 / 2)


def ideal_bound(graph: Graph, workers: int, lat: Callable[[str], float]) -> float:
    total = sum(lat(p) for p in graph.paths)
    return max(total / workers, critical_path(graph, lat))


def session_dag(graph: Graph) -> DependencyGraph:
    """The DAG a session of ``graph`` runs: node ``i`` is ``graph.paths[i]``, cycles cut by the
    scheduler's own rule (``DependencyGraph.break_cycles``)."""
    ids = {p: i for i, p in enumerate(graph.paths)}
    dag = DependencyGraph(
        ((ids[a], [ids[c] for c in kids]) for a, kids in graph.children.items()), ids.values()
    )
    dag.break_cycles()
    return dag


def precedence_bound(graph: Graph, workers: int, lat: Callable[[str], float]) -> float:
    """A lower bound no schedule of the session's DAG can beat, tighter than ``ideal_bound``.

    The DAG is the session's own (cycles cut by ``DependencyGraph.break_cycles``, the rule the
    scheduler must keep). A node with a chain of ``above`` seconds of work waiting on it must
    finish by ``wall - above``; so every node with ``above >= t`` (their work ``W(t)``) is done
    within ``wall - t`` on ``workers``: ``wall >= t + W(t) / workers`` for every ``t``.
    """
    dag = session_dag(graph)
    seconds = [lat(p) for p in graph.paths]
    chain = chain_above(dag.parents, seconds.__getitem__)
    above = sorted(((chain[i] - seconds[i], seconds[i]) for i in chain), reverse=True)
    bound, work = max(chain.values()), 0.0
    for k, (t, s) in enumerate(above):
        work += s
        if k + 1 == len(above) or above[k + 1][0] < t:  # every node with above >= t counted
            bound = max(bound, t + work / workers)
    return bound


def critical_path(graph: Graph, lat: Callable[[str], float]) -> float:
    """The longest chain of dependent work from the root, once a depth-first search's back
    edges are dropped (with cycles no schedule can do better than some such chain)."""
    order: list[str] = []  # post-order: children before parents
    state: dict[str, int] = {}
    work: list[tuple[str, int]] = [(graph.root, 0)]
    state[graph.root] = 1
    dag: dict[str, list[str]] = {}
    while work:
        node, i = work.pop()
        kids = graph.children.get(node, [])
        if i == len(kids):
            state[node] = 2
            order.append(node)
            continue
        work.append((node, i + 1))
        child = kids[i]
        if state.get(child) == 1:
            continue  # a back edge: dropped
        dag.setdefault(node, []).append(child)
        if child not in state:
            state[child] = 1
            work.append((child, 0))
    longest: dict[str, float] = {}
    for node in order:
        longest[node] = lat(node) + max((longest[c] for c in dag.get(node, ())), default=0.0)
    return longest[graph.root]


# ----------------------------------------------------------------------------- measuring


class CountingDB:
    """Forwards to a GraphDB, counting round trips and time spent in them."""

    def __init__(self, db: GraphDB) -> None:
        self.db = db
        self.calls = 0
        self.seconds = 0.0
        self.by_kind: dict[str, float] = {}

    def run_query(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        start = time.perf_counter()
        try:
            return self.db.run_query(query, params)
        finally:
            spent = time.perf_counter() - start
            self.calls += 1
            self.seconds += spent
            reads_scope = any(k in query for k in ("'pending' RETURN", "AS parent", "AS node_ids"))
            kind = "cleanup" if "REMOVE" in query else "init" if reads_scope else ""
            if kind:
                self.by_kind[kind] = self.by_kind.get(kind, 0.0) + spent

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> CountingDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


CASES: dict[str, tuple[Callable[[bool], Graph], float, str]] = {
    # name: (graph factory(quick), mean latency s, distribution)
    "wide": (lambda quick: wide(1_000 if quick else 10_000), 0.02, "fixed"),
    "balanced": (lambda quick: tree(10, 3 if quick else 4), 0.02, "fixed"),
    "balanced-lognormal": (lambda quick: tree(10, 3 if quick else 4), 0.02, "lognormal"),
    "chain": (lambda quick: chain(50 if quick else 200), 0.02, "fixed"),
    "calls": (lambda quick: call_graph(1_000 if quick else 10_000), 0.02, "fixed"),
    "tree-10k": (lambda quick: sized_tree(1_000 if quick else 10_000), 0.01, "fixed"),
    "tree-50k": (lambda quick: sized_tree(5_000 if quick else 50_000), 0.01, "fixed"),
    # issue 19's scheduling cases (seed 313: one strongly connected component of 810)
    "calls-2k": (lambda quick: call_graph(2_000, seed=313), 0.02, "fixed"),
    "chain-100": (lambda quick: chain(100), 0.02, "fixed"),
    "tree-3906": (lambda quick: tree(5, 5), 0.02, "fixed"),
    "tree-1111": (lambda quick: tree(10, 3), 0.02, "fixed"),
}


def run_baseline(db: GraphDB, graph: Graph, workers: int, llm: Callable[[str], str]) -> None:
    """The design this processor replaces: fetch a batch of ready nodes, run it, wait for all
    of it, mark it, fetch the next (one graph scan per batch)."""
    sid = uuid.uuid4().hex
    params: dict[str, Any] = {"session_id": sid}
    db.run_query(q.initialize_processing_session_query(sid), params)
    claim = baseline.get_processable_nodes_query(sid, graph.relationship)
    mark = baseline.mark_processing_status_batch_query(sid)
    try:
        with ThreadPoolExecutor(workers) as pool:
            while True:
                rows = db.run_query(claim, {**params, "batch_size": workers})
                if not rows:
                    break
                paths = [str(r["path"]) for r in rows]
                list(pool.map(llm, paths))
                db.run_query(mark, {**params, "node_paths": paths, "status": "completed"})
    finally:
        db.run_query(q.cleanup_session_query(sid), params)


def measure(case: str, workers: int, mode: str, quick: bool, uri: str | None) -> dict[str, Any]:
    """One measurement (runs inside its own subprocess)."""
    factory, mean, dist = CASES[case]
    graph = factory(quick)
    db = bl.connect(uri) if uri else bl.connect(temporary=True)
    if uri:
        db.run_query("MATCH (n) DETACH DELETE n", {})
    build(db, graph)

    def llm(prompt_or_path: str) -> str:
        path = prompt_or_path
        if "\n" in prompt_or_path:
            path = parse_prompt(prompt_or_path).path
        time.sleep(latency_of(path, mean, dist))
        return "documented"

    counting = CountingDB(db)
    start = time.perf_counter()
    utilisation = float("nan")
    if mode == "ours":
        proc = bl.RecursiveDFSProcessor(
            counting, llm, max_workers=workers, progress=False, timeout=3600
        )
        proc.process_node(graph.root, use_hierarchy=graph.relationship == "CONTAINS")
        wall = time.perf_counter() - start
        session = proc.last_session
        assert session is not None and session.counts["completed"] == len(graph.paths)
        utilisation = float(session.summary()["utilisation"].iloc[0])
    else:
        run_baseline(counting, graph, workers, llm)
        wall = time.perf_counter() - start
    bound = ideal_bound(graph, workers, lambda p: latency_of(p, mean, dist))
    exact = precedence_bound(graph, workers, lambda p: latency_of(p, mean, dist))
    db.close()
    return {
        "case": case,
        "nodes": len(graph.paths),
        "latency": f"{dist} {mean * 1000:g} ms",
        "workers": workers,
        "mode": mode,
        "wall_s": round(wall, 3),
        "bound_s": round(bound, 3),
        "efficiency": round(bound / wall, 3),
        "precedence_bound_s": round(exact, 3),
        "precedence_efficiency": round(exact / wall, 3),
        "utilisation": round(utilisation, 3),
        "round_trips_per_node": round(counting.calls / len(graph.paths), 4),
        "db_share": round(counting.seconds / wall, 3),
        "init_s": round(counting.by_kind.get("init", 0.0), 3),
        "cleanup_s": round(counting.by_kind.get("cleanup", 0.0), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "nodes_per_s": round(len(graph.paths) / wall, 1),
    }


# -------------------------------------------------------------------------------- the run

FULL_MATRIX: list[tuple[str, int, str]] = [
    *[(c, w, "ours") for c in ("wide", "balanced", "chain", "calls") for w in (4, 16, 64)],
    ("balanced-lognormal", 16, "ours"),
    ("tree-10k", 64, "ours"),
    ("tree-50k", 64, "ours"),
    ("calls-2k", 16, "ours"),
    ("chain-100", 4, "ours"),
    ("tree-3906", 32, "ours"),
    ("tree-1111", 8, "ours"),
    ("balanced", 16, "baseline"),
    ("balanced-lognormal", 16, "baseline"),
    ("chain", 16, "baseline"),
    ("tree-10k", 64, "baseline"),
]


def targets(rows: list[dict[str, Any]], quick: bool) -> list[tuple[str, bool, str]]:
    def get(case: str, workers: int, mode: str = "ours") -> dict[str, Any] | None:
        return next(
            (r for r in rows if (r["case"], r["workers"], r["mode"]) == (case, workers, mode)),
            None,
        )

    out: list[tuple[str, bool, str]] = []

    def check(
        name: str, row: dict[str, Any] | None, ok: Callable[[dict[str, Any]], bool], shown: str
    ) -> None:
        if row is not None:
            out.append((name, ok(row), shown.format(**row)))

    check("balanced, 16 workers, 20 ms: efficiency >= 0.90", get("balanced", 16),
          lambda r: r["efficiency"] >= 0.90, "{efficiency}")  # fmt: skip
    check("50k tree, 64 workers, 10 ms: efficiency >= 0.80", get("tree-50k", 64),
          lambda r: r["efficiency"] >= 0.80, "{efficiency}")  # fmt: skip
    check("50k tree: peak RSS <= 500 MB", get("tree-50k", 64),
          lambda r: r["peak_rss_mb"] <= 500, "{peak_rss_mb} MB")  # fmt: skip
    check("deep chain, 20 ms: efficiency >= 0.85", get("chain", 16),
          lambda r: r["efficiency"] >= 0.85, "{efficiency}")  # fmt: skip
    check("50k tree: initialise + clean up <= 3 s", get("tree-50k", 64),
          lambda r: r["init_s"] + r["cleanup_s"] <= 3.0, "{init_s} s + {cleanup_s} s")  # fmt: skip
    ours, base = get("balanced-lognormal", 16), get("balanced-lognormal", 16, "baseline")
    if ours and base:
        ratio = base["wall_s"] / ours["wall_s"]
        out.append(
            ("lognormal, 16 workers: >= 1.3x faster than baseline", ratio >= 1.3, f"{ratio:.2f}x")
        )
    small, big = get("tree-10k", 64), get("tree-50k", 64)
    if small and big:
        ratio = big["wall_s"] / small["wall_s"]
        out.append(("50k nodes take <= 5.5x the time of 10k", ratio <= 5.5, f"{ratio:.2f}x"))
    issue_19 = [(c, w) for c in ("wide", "balanced", "chain", "calls") for w in (4, 16)]
    issue_19 += [("calls-2k", 16), ("chain-100", 4), ("tree-3906", 32), ("tree-1111", 8)]
    for case, workers in issue_19:
        check(f"{case}, {workers} workers: >= 0.95 of the bound (of the precedence bound)",
              get(case, workers), lambda r: r["efficiency"] >= 0.95,
              "{efficiency} ({precedence_efficiency})")  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the processor against its ideal bound.")
    parser.add_argument("--quick", action="store_true", help="graphs a tenth of the size")
    parser.add_argument("--uri", help="run on this database (default: embedded FalkorDB)")
    parser.add_argument("--cases", nargs="*", help=f"subset of {', '.join(CASES)}")
    parser.add_argument("--workers", nargs="*", type=int, help="subset of worker counts")
    parser.add_argument(
        "--one", nargs=3, metavar=("CASE", "WORKERS", "MODE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--report", action="store_true", help="rewrite latest.md from latest.csv, run nothing"
    )
    args = parser.parse_args()
    if args.report:
        with open(RESULTS / "latest.csv", newline="") as f:
            rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
        report(rows, args.quick, _machine_line())
        return 0
    if args.one:
        case, workers, mode = args.one
        print(json.dumps(measure(case, int(workers), mode, args.quick, args.uri)))
        return 0
    matrix = [
        m
        for m in FULL_MATRIX
        if (not args.cases or m[0] in args.cases) and (not args.workers or m[1] in args.workers)
    ]
    rows: list[dict[str, Any]] = []
    for case, workers, mode in matrix:
        cmd = [sys.executable, __file__, "--one", case, str(workers), mode]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--uri", args.uri] if args.uri else []
        out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if out.returncode != 0:
            print(f"{case}/{workers}/{mode} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            return 1
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{case:>20} {mode:>8} w={workers:<3} nodes={row['nodes']:<6} wall={row['wall_s']:>7.2f}s "
            f"bound={row['bound_s']:>7.2f}s eff={row['efficiency']:.2f} rt/node={row['round_trips_per_node']}",
            flush=True,
        )
    for row in rows:
        base = next(
            (
                r
                for r in rows
                if r["mode"] == "baseline"
                and (r["case"], r["workers"]) == (row["case"], row["workers"])
            ),
            None,
        )
        row["baseline_ratio"] = (
            round(base["wall_s"] / row["wall_s"], 2) if base and row["mode"] == "ours" else ""
        )
    machine = (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{'Neo4j ' + args.uri if args.uri else 'embedded FalkorDB'}, "
        f"{'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d')}"
    )
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "latest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report(rows, args.quick, machine)
    return 0


def _number(value: str) -> Any:
    """A CSV cell back to the number it was written from (text stays text)."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _machine_line() -> str:
    """The machine line of the last full run (kept when the report is rewritten)."""
    old = (
        (RESULTS / "latest.md").read_text().splitlines() if (RESULTS / "latest.md").exists() else []
    )
    return old[0].removeprefix("Machine: ") if old else platform.node()


def report(rows: list[dict[str, Any]], quick: bool, machine: str) -> None:
    """``latest.md``: the rows, then each target with PASS or FAIL."""
    columns = list(rows[0])
    lines = [
        f"Machine: {machine}",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    checks = targets(rows, quick)
    if checks:
        lines += ["", "| target | result | measured |", "|---|---|---|"]
        lines += [
            f"| {name} | {'PASS' if ok else 'FAIL'} | {shown} |" for name, ok, shown in checks
        ]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
