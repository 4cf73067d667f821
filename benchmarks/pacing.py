"""Pacing a whole session against a server that refuses bursts: failed nodes, wall time.

    python benchmarks/pacing.py                          # R=600/min, 201 nodes, 8 workers
    python benchmarks/pacing.py --rpm 1200 --nodes 301   # another rate
    python benchmarks/pacing.py --unpaced                # retries alone, for comparison

Starts the test suite's OpenAI-compatible server on 127.0.0.1 allowing R requests per minute
(at most R/60 + 1 in any sliding second; a 429 with Retry-After above it), loads a tree of
N nodes into a throwaway embedded FalkorDB, and documents it with
``RecursiveDFSProcessor(db, OpenAIChat(...), max_workers=8, requests_per_minute=R)``: the real
``openai`` client, the session's shared rate limiter, retries on 429. Targets: 0 failed nodes
and a wall time within 1.15x of ``calls / R`` minutes. Prints a Markdown table and writes
``benchmarks/results/pacing.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import blarify_lab as bl
from tests.llm_server import LLMTestServer

KEY = "sk-benchmark-key"
RESULTS = Path(__file__).parent / "results" / "pacing.md"


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most requests that started within any ``window`` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def run(rpm: float, nodes: int, workers: int, delay: float, paced: bool) -> dict[str, object]:
    children = max(nodes - 1, 1)
    with (
        LLMTestServer(api_key=KEY, requests_per_minute=rpm, delay=delay) as server,
        bl.connect(temporary=True) as db,
    ):
        db.run_query(
            "CREATE (r:FOLDER {path: '/r'}) WITH r UNWIND range(1, $n) AS i "
            "CREATE (r)-[:CONTAINS]->(:FUNCTION {path: '/r/f' + toString(i), "
            "text: 'def f' + toString(i) + '(): pass'})",
            {"n": children},
        )
        llm = bl.OpenAIChat("bench", base_url=server.base_url, api_key=KEY, timeout=10)
        proc = bl.RecursiveDFSProcessor(
            db,
            llm,
            max_workers=workers,
            progress=False,
            requests_per_minute=rpm if paced else None,
            max_retries=8,
        )
        start = time.monotonic()
        proc.process_node("/r", scope="subtree")
        wall = time.monotonic() - start
        session = proc.last_session
        assert session is not None
        llm.close()
    statuses = server.statuses()
    ideal = (children + 1) / rpm * 60
    accepted = [r.t for r in server.chat_requests() if r.status == 200]
    return {
        "mode": "paced" if paced else "unpaced",
        "rpm": rpm,
        "nodes": children + 1,
        "failed nodes": session.counts["failed"],
        "requests": len(statuses),
        "429s": statuses.count(429),
        "max accepted in 1 s": max_in_window(accepted),
        "wall_s": round(wall, 2),
        "calls/R s": round(ideal, 2),
        "ratio": round(wall / ideal, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rpm", type=float, default=600, help="server limit, requests/minute")
    parser.add_argument("--nodes", type=int, default=201, help="nodes in the tree")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.02, help="server latency, seconds")
    parser.add_argument("--unpaced", action="store_true", help="no rate limit, retries only")
    args = parser.parse_args(argv)
    row = run(args.rpm, args.nodes, args.workers, args.delay, paced=not args.unpaced)
    header = "| " + " | ".join(row) + " |"
    table = "\n".join(
        [header, "|" + "---|" * len(row), "| " + " | ".join(str(v) for v in row.values()) + " |"]
    )
    ok = row["failed nodes"] == 0 and float(str(row["ratio"])) <= 1.15
    verdict = f"target (0 failed nodes, wall <= 1.15x calls/R): {'PASS' if ok else 'FAIL'}"
    print(table)
    print(verdict)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(f"# Pacing\n\n`python benchmarks/pacing.py`\n\n{table}\n\n{verdict}\n")
    return 0 if ok or args.unpaced else 1


if __name__ == "__main__":
    sys.exit(main())
