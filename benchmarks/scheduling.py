"""Issue 19's scheduling measurements that are not plain efficiency runs (``run.py`` has those).

    python benchmarks/scheduling.py size-aware            # simulated, no database
    python benchmarks/scheduling.py forecast calls-2k 16  # a session, then the forecast of a
                                                          # second one, then that session
    python benchmarks/scheduling.py forecast-package      # the same on a real package

``size-aware``: a 3-ary tree of 1,093 nodes whose sources are lognormal in size (sigma 1.5),
call time proportional to prompt length, 16 workers; the wall time of this scheduler's
priority (the chain of predicted seconds above a node) against zero-overhead arrival order.

    python benchmarks/scheduling.py throughput 1 2 8 64   # no-wait calls: nodes per second
    python benchmarks/scheduling.py precedence calls 16   # simulated: priority against bounds

``forecast``: the graph of a ``run.py`` case is documented (its calls are stored with their
times), every function's source is changed, ``estimate()`` forecasts the second run and the
second run is made: forecast against measured wall time and completion tokens.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too

import blarify_lab as bl
from benchmarks.run import (
    CASES,
    build,
    ideal_bound,
    latency_of,
    precedence_bound,
    session_dag,
    sized_tree,
    tree,
)
from blarify_lab.graph import DependencyGraph
from blarify_lab.prompts import parse_prompt
from blarify_lab.simulate import simulate_wall


def size_aware(workers: int = 16, seed: int = 5, sigma: float = 1.5) -> dict[str, Any]:
    """Simulated: priority by predicted seconds against arrival order, zero overhead."""
    graph = tree(3, 6)
    rng = random.Random(seed)
    n = len(graph.paths)
    seconds = {i: 0.02 * math.exp(rng.gauss(0.0, sigma) - sigma**2 / 2) for i in range(n)}
    g = session_dag(graph)
    ours = simulate_wall(g.parents, g.unfinished, seconds, workers)
    arrival = simulate_wall(g.parents, g.unfinished, seconds, workers, by_priority=False)
    bound = max(sum(seconds.values()) / workers, max(_chains(g, seconds).values()))
    return {
        "case": "size-aware 3-ary tree",
        "nodes": n,
        "workers": workers,
        "priority_wall_s": round(ours, 3),
        "arrival_wall_s": round(arrival, 3),
        "ratio": round(ours / arrival, 3),
        "bound_s": round(bound, 3),
    }


def _chains(g: DependencyGraph, seconds: dict[int, float]) -> dict[int, float]:
    from blarify_lab.priorities import chain_above

    return chain_above(g.parents, seconds.__getitem__)


def forecast(case: str, workers: int) -> dict[str, Any]:
    """Document a case's graph, change every node's source, forecast the second run, run it."""
    factory, mean, dist = CASES[case]
    graph = factory(False)
    db = bl.connect(temporary=True)
    build(db, graph)

    def llm(prompt: str) -> str:
        path = parse_prompt(prompt).path
        time.sleep(latency_of(path, mean, dist))
        return "documented " * (3 + len(path) % 5)

    proc = bl.RecursiveDFSProcessor(db, llm, max_workers=workers, progress=False, timeout=3600)
    hierarchy = graph.relationship == "CONTAINS"
    proc.process_node(graph.root, use_hierarchy=hierarchy)
    db.run_query("MATCH (n:FUNCTION) SET n.text = 'def changed(): pass'", {})
    row = proc.estimate(graph.root, use_hierarchy=hierarchy).iloc[0]
    start = time.perf_counter()
    proc.process_node(graph.root, use_hierarchy=hierarchy)
    wall = time.perf_counter() - start
    session = proc.last_session
    assert session is not None and session.llm_calls == len(graph.paths)
    db.close()
    return {
        "case": case,
        "workers": workers,
        **_against_forecast(row, wall, session),
    }


def forecast_package(workers: int = 8, delay: float = 0.03) -> dict[str, Any]:
    """A real package (the standard library's ``email``) through the OpenAI client and the
    local OpenAI-compatible test server: document it, edit a third of its files, forecast the
    second run, run it."""
    import email
    import shutil
    import tempfile

    from blarify_lab.openai_chat import OpenAIChat
    from tests.llm_server import LLMTestServer

    with tempfile.TemporaryDirectory() as tmp, LLMTestServer(api_key="sk-bench") as server:
        pkg = Path(tmp) / "email"
        shutil.copytree(Path(email.__file__).parent, pkg)
        server.set_delay(delay)
        db = bl.connect(temporary=True)
        bl.load_python_package(db, pkg, progress=False)
        llm = OpenAIChat("bench-model", base_url=server.base_url, api_key="sk-bench")
        proc = bl.RecursiveDFSProcessor(db, llm, max_workers=workers, progress=False)
        proc.process_node("/email")
        for i, source in enumerate(sorted(pkg.rglob("*.py"))):
            if i % 3 == 0:
                source.write_text(source.read_text() + f"\n\ndef _edited_{i}():\n    return {i}\n")
        bl.load_python_package(db, pkg, progress=False)
        row = proc.estimate("/email").iloc[0]
        start = time.perf_counter()
        proc.process_node("/email")
        wall = time.perf_counter() - start
        session = proc.last_session
        assert session is not None
        db.close()
    return {
        "case": "email package, edited",
        "workers": workers,
        "llm_calls": f"{int(row['llm_calls'])} forecast, {session.llm_calls} made",
        **_against_forecast(row, wall, session),
    }


def throughput(workers: int, nodes: int = 10_000) -> dict[str, Any]:
    """No-wait calls: a tree of ``nodes``, an LLM that answers at once; nodes per second of
    wall time and per second of the client's CPU (``process_time``)."""
    graph = sized_tree(nodes)
    db = bl.connect(temporary=True)
    build(db, graph)
    proc = bl.RecursiveDFSProcessor(
        db, lambda _p: "documented", max_workers=workers, progress=False
    )
    cpu, start = time.process_time(), time.perf_counter()
    proc.process_node(graph.root)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.close()
    return {
        "case": f"no-wait tree of {nodes}",
        "workers": workers,
        "wall_s": round(wall, 3),
        "nodes_per_s": round(nodes / wall),
        "nodes_per_cpu_s": round(nodes / cpu),
    }


def precedence(case: str, workers: int) -> dict[str, Any]:
    """Simulated, zero overhead: this scheduler's priority and arrival order against the
    issue's bound (``ideal_bound``) and the bound no schedule of the session's DAG can beat
    (``precedence_bound``)."""
    factory, mean, dist = CASES[case]
    graph = factory(False)
    g = session_dag(graph)
    seconds = {i: latency_of(p, mean, dist) for i, p in enumerate(graph.paths)}
    ours = simulate_wall(g.parents, g.unfinished, seconds, workers)
    arrival = simulate_wall(g.parents, g.unfinished, seconds, workers, by_priority=False)
    lat = lambda p: latency_of(p, mean, dist)  # noqa: E731
    return {
        "case": case,
        "workers": workers,
        "issue_bound_s": round(ideal_bound(graph, workers, lat), 3),
        "precedence_bound_s": round(precedence_bound(graph, workers, lat), 3),
        "priority_wall_s": round(ours, 3),
        "arrival_wall_s": round(arrival, 3),
    }


def main() -> int:
    if sys.argv[1:2] == ["size-aware"]:
        print(json.dumps(size_aware()))
    elif sys.argv[1:2] == ["throughput"]:
        for workers in [int(w) for w in (sys.argv[2:] or ["1", "2", "8", "64"])]:
            print(json.dumps(throughput(workers)), flush=True)
    elif sys.argv[1:2] == ["precedence"]:
        print(json.dumps(precedence(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1:2] == ["forecast-package"]:
        print(json.dumps(forecast_package()))
    elif sys.argv[1:2] == ["forecast"]:
        print(json.dumps(forecast(sys.argv[2], int(sys.argv[3]))))
    else:
        print(__doc__)
        return 2
    return 0


def _against_forecast(row: Any, wall: float, session: Any) -> dict[str, Any]:
    """The forecast (an ``estimate()`` row) beside what the run measured, and the errors."""
    forecast_wall, forecast_tokens = float(row["wall_s"]), int(row["completion_tokens"])
    return {
        "forecast_wall_s": round(forecast_wall, 3),
        "wall_s": round(wall, 3),
        "wall_error": round(forecast_wall / wall - 1, 3),
        "forecast_completion_tokens": forecast_tokens,
        "completion_tokens": session.completion_tokens,
        "tokens_error": round(forecast_tokens / session.completion_tokens - 1, 3),
        "basis": f"{row['wall_s_basis']}/{row['completion_tokens_basis']}",
    }


if __name__ == "__main__":
    sys.exit(main())
