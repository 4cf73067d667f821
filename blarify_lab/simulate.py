"""How long a session takes, before it runs: this scheduler replayed over the DAG in memory.

Pure logic. Nodes run leaves first on ``workers`` workers, ready nodes by the longest chain of
predicted seconds above them (``priorities``), each call started no earlier than the request
and token limits allow (``60 / rpm`` between starts; a token bucket refilled at ``tpm / 60``
per second holding ``burst_s`` seconds of refill). Cycles must be cut first.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence

from .priorities import ReadyQueue, chain_above

__all__ = ["remaining_s", "simulate_wall"]


def simulate_wall(
    parents: Mapping[int, Sequence[int]],
    unfinished: Mapping[int, int],
    seconds: Mapping[int, float],
    workers: int,
    *,
    tokens: Mapping[int, int] | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    burst_s: float = 2.0,
    per_node_s: float = 0.0,
    by_priority: bool = True,
) -> float:
    """Seconds from the first start to the last finish.

    ``parents``/``unfinished`` are a ``DependencyGraph``'s after its cut; ``seconds`` each
    node's predicted call time (0 for reused documentation), ``tokens`` what each call charges
    the token limit. ``per_node_s`` is the scheduler's own cost per node (serial).
    ``by_priority=False`` runs ready nodes in arrival order instead.
    """
    weight = {n: seconds.get(n, 0.0) + per_node_s for n in parents}
    priority = chain_above(parents, weight.__getitem__) if by_priority else {}
    left = dict(unfinished)
    ready = ReadyQueue(priority, sorted(n for n, k in left.items() if k == 0))
    running: list[tuple[float, int]] = []  # (finish time, node)
    now = 0.0
    next_start = 0.0  # the request limit's next slot
    gap = 60.0 / requests_per_minute if requests_per_minute else 0.0
    rate = tokens_per_minute / 60.0 if tokens_per_minute else math.inf
    capacity = rate * burst_s
    bucket, bucket_at = capacity, 0.0
    scheduler_free = 0.0  # the scheduler thread handles one node at a time
    done = 0
    while done < len(parents):
        while ready and len(running) < workers:
            node = ready.pop()
            start = max(now, scheduler_free)
            scheduler_free = start + per_node_s
            call = seconds.get(node, 0.0)
            if call > 0:
                start = max(start, next_start)
                next_start = start + gap
                need = float(tokens.get(node, 0)) if tokens is not None else 0.0
                if rate != math.inf and need:
                    bucket = min(capacity, bucket + (start - bucket_at) * rate)
                    if bucket < min(need, capacity):
                        start += (min(need, capacity) - bucket) / rate
                        bucket = min(need, capacity)
                    bucket, bucket_at = bucket - need, start
            heapq.heappush(running, (start + per_node_s + call, node))
        if not running:
            break  # a cycle was left uncut: nothing more can run
        now, node = heapq.heappop(running)
        done += 1
        for parent in parents.get(node, ()):
            left[parent] -= 1
            if left[parent] == 0:
                ready.extend([parent])
    return now


def remaining_s(
    nodes_left: int, task_s: float | None, workers: int, chain_left: float
) -> float | None:
    """What is left of a running session, by the same bound the forecast meets: the remaining
    work spread over the workers, or the longest remaining chain (in nodes), whichever is
    longer. ``task_s`` is what one task took lately (None: not known yet)."""
    if task_s is None:
        return None
    return max(nodes_left * task_s / workers, chain_left * task_s)
