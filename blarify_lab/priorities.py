"""Which ready node runs first: the one with the longest chain of work still above it.

Pure logic. A node is documented after its children, so once a node finishes, the work left
on its account is the chain from it up to a root (its parents, their parents, ...). Running
ready nodes by the longest such chain first keeps the critical path moving while short side
branches fill the idle workers; ties keep arrival order. Chains are counted in nodes, or in
predicted seconds when a latency model gives each node a weight.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Container, Iterable, Mapping, Sequence

__all__ = ["ReadyQueue", "chain_above"]


def chain_above(
    parents: Mapping[int, Sequence[int]], weight: Callable[[int], float] | None = None
) -> dict[int, float]:
    """For every node of an acyclic ``parents`` map (node -> the nodes that wait for it), the
    heaviest chain from it up to a root, itself included (``weight(node)``, default 1).

    Cycles must be cut first (``DependencyGraph.break_cycles``); a node still on a cycle gets
    its own weight only.
    """
    w = weight or (lambda _node: 1.0)
    waiting_below: dict[int, list[int]] = {node: [] for node in parents}
    left = {node: 0 for node in parents}
    for node, ps in parents.items():
        for p in ps:
            if p in left:
                waiting_below[p].append(node)
                left[node] += 1
    chain: dict[int, float] = {}
    frontier = [node for node, n in left.items() if n == 0]  # roots: nothing above them
    for node in frontier:
        chain[node] = w(node)
    while frontier:
        node = frontier.pop()
        above = chain[node]
        for child in waiting_below[node]:
            chain[child] = max(chain.get(child, 0.0), above)
            left[child] -= 1
            if left[child] == 0:
                chain[child] += w(child)
                frontier.append(child)
    for node in parents:
        if left[node] != 0:  # still on a cycle: no chain is defined
            chain[node] = w(node)
    return chain


class ReadyQueue:
    """Ready nodes, the longest chain above first; equal chains in arrival order."""

    def __init__(self, priority: Mapping[int, float], nodes: Iterable[int] = ()) -> None:
        self._priority = priority
        self._heap: list[tuple[float, int, int]] = []
        self._arrival = itertools.count()
        self.extend(nodes)

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def extend(self, nodes: Iterable[int]) -> None:
        for node in nodes:
            heapq.heappush(self._heap, (-self._priority.get(node, 0.0), next(self._arrival), node))

    def best(self) -> float:
        """The longest chain above a queued node (0 when empty)."""
        return -self._heap[0][0] if self._heap else 0.0

    def pop(self) -> int:
        return heapq.heappop(self._heap)[2]

    def take_while(self, wanted: Container[int], n: int) -> list[int]:
        """Up to ``n`` nodes, best first, while the best is in ``wanted``."""
        taken: list[int] = []
        while self._heap and len(taken) < n and self._heap[0][2] in wanted:
            taken.append(self.pop())
        return taken

    def take(self, n: int) -> list[int]:
        """Up to ``n`` nodes, best first."""
        return [self.pop() for _ in range(min(n, len(self._heap)))]
