"""Pacing against a server that refuses bursts: failed calls and wall time vs the ideal.

    python benchmarks/pacing.py                         # R=600/min, 200 calls, 8 threads, ~20 s
    python benchmarks/pacing.py --rpm 1200 --calls 300  # another rate
    python benchmarks/pacing.py --no-limiter            # retries alone, for comparison

Starts the test suite's OpenAI-compatible server on 127.0.0.1 with a limit of R requests per
minute (at most R/60 + 1 in any sliding second, a 429 with Retry-After above it), and drives
``RateLimiter`` + ``call_with_retries`` + ``OpenAIChat`` (through ``call_llm``) from N
threads, each 429 slowing the shared limiter. Targets: 0 failed calls, wall time within 1.15x of ``calls / R`` minutes.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blarify_lab.llm_calls import call_llm
from blarify_lab.openai_chat import OpenAIChat
from blarify_lab.pacing import RateLimiter
from blarify_lab.retries import LLMCallError
from tests.llm_server import LLMTestServer

KEY = "sk-benchmark-key"


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rpm", type=float, default=600, help="server limit, requests/minute")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.02, help="server latency, seconds")
    parser.add_argument("--max-retries", type=int, default=6)
    parser.add_argument(
        "--no-limiter", action="store_true", help="retries only: no RateLimiter (baseline)"
    )
    args = parser.parse_args(argv)

    limiter = None if args.no_limiter else RateLimiter(requests_per_minute=args.rpm)
    failed: list[str] = []
    attempts: list[int] = []
    lock = threading.Lock()

    with (
        LLMTestServer(api_key=KEY, requests_per_minute=args.rpm, delay=args.delay) as server,
        OpenAIChat("bench-model", base_url=server.base_url, api_key=KEY, timeout=30) as llm,
    ):

        def one(i: int) -> None:
            prompt = f"# Document\n## Node\nPath: /pkg/mod_{i}.py\n"
            try:
                outcome = call_llm(
                    llm.complete,
                    prompt,
                    limiter=limiter,
                    max_retries=args.max_retries,
                    deadline=None,
                )
            except LLMCallError as err:
                with lock:
                    failed.append(str(err))
                    attempts.append(err.attempts)
                return
            with lock:
                attempts.append(outcome.attempts)

        began = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(one, range(args.calls)))
        wall = time.monotonic() - began
        statuses = server.statuses()
        accepted = [r.t for r in server.chat_requests() if r.status == 200]

    ideal = args.calls / args.rpm * 60
    print(
        f"pacing: {args.calls} calls, {args.threads} threads, server limit {args.rpm:g}/min "
        f"(at most {int(args.rpm // 60) + 1} in any second), "
        f"{'no limiter' if limiter is None else 'RateLimiter'}"
    )
    print(f"  failed calls       {len(failed)}   (target 0)")
    print(f"  attempts           {sum(attempts)}   ({statuses.count(429)} answered 429)")
    print(f"  max accepted/1 s   {max_in_window(accepted)}")
    print(
        f"  wall               {wall:.2f} s vs calls / R = {ideal:.2f} s: {wall / ideal:.3f}x "
        "(target <= 1.15x)"
    )
    if limiter is not None:
        stats = limiter.stats()
        print(
            f"  limiter            waited {stats.waited_s:.1f} thread-s in all, "
            f"{stats.rate_limited} 429(s) reported to it"
        )
    for message in failed[:3]:
        print(f"  failure: {message}")
    ok = not failed and wall <= 1.15 * ideal
    return 0 if ok or limiter is None else 1


if __name__ == "__main__":
    sys.exit(main())
