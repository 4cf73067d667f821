"""Scheduling order without a database: cycles cut before the start, critical path first."""

from __future__ import annotations

import random

from blarify_lab.graph import DependencyGraph
from blarify_lab.priorities import ReadyQueue, chain_above
from blarify_lab.simulate import simulate_wall

# the graphs of the processor's cycle tests (ids as the paths' order)
CYCLE_TEST_GRAPHS: list[list[tuple[int, list[int]]]] = [
    [(1, [2]), (2, [3]), (3, [1])],  # a -> b -> c -> a
    [(1, [1])],  # a self call
    [(1, [2, 5]), (2, [3]), (3, [4]), (4, [3]), (5, [6]), (6, [5])],  # two cycles behind main
    [(1, [2]), (2, [3]), (3, [1])],  # x -> y -> z -> x
    [(i, sorted({(i + 1) % 1000, (i * 7 + 3) % 1000, (i + 500) % 1000})) for i in range(1000)],
]


def _cut_at_stall(edges: list[tuple[int, list[int]]]) -> DependencyGraph:
    """The rule before issue 19: run what is ready, cut cycles only when nothing is."""
    g = DependencyGraph(edges)
    ready = g.ready()
    while ready or g.pending:
        if not ready:
            ready = g.break_cycles()
            continue
        nxt: list[int] = []
        for node in ready:
            g.claim(node)
            nxt.extend(g.finish(node))
        ready = sorted(nxt)
    return g


def _random_graphs(count: int) -> list[list[tuple[int, list[int]]]]:
    rng = random.Random(19)
    graphs = []
    for _ in range(count):
        n = rng.randint(2, 60)
        graphs.append(
            [(i, sorted({rng.randrange(n) for _ in range(rng.randint(0, 3))})) for i in range(n)]
        )
    return graphs


def test_cutting_before_the_start_cuts_the_same_edges_as_a_stall() -> None:
    for edges in CYCLE_TEST_GRAPHS + _random_graphs(200):
        today = _cut_at_stall(edges)
        early = DependencyGraph(edges)
        early.break_cycles()
        assert early.cycle_sources == today.cycle_sources
        assert {n: sorted(ps) for n, ps in early.parents.items()} == {
            n: sorted(ps) for n, ps in today.parents.items()
        }
        assert early.break_cycles() == [] and early.cycle_sources == today.cycle_sources


def test_chain_above_counts_the_longest_chain_to_the_root() -> None:
    #      1
    #    / | \
    #   2  3  4
    #   |
    #   5
    #   |
    #   6
    g = DependencyGraph([(1, [2, 3, 4]), (2, [5]), (5, [6])])
    assert chain_above(g.parents) == {1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 4}
    weights = {1: 1.0, 2: 1.0, 3: 10.0, 4: 1.0, 5: 1.0, 6: 1.0}
    assert chain_above(g.parents, weights.__getitem__)[3] == 11.0
    # a node under two parents takes the heavier chain
    diamond = DependencyGraph([(1, [2, 3]), (2, [4]), (3, [5]), (5, [4])])
    assert chain_above(diamond.parents)[4] == 4


def test_ready_order_follows_the_critical_path() -> None:
    # root 0 waits for leaves 1..4 and for the chain 5 -> 6 -> 7 -> 8
    g = DependencyGraph([(0, [1, 2, 3, 4, 5]), (5, [6]), (6, [7]), (7, [8])])
    priority = chain_above(g.parents)
    ready = ReadyQueue(priority, g.ready())
    assert g.ready() == [1, 2, 3, 4, 8]
    assert ready.take(3) == [8, 1, 2], "the chain's leaf first, then arrival order"
    ready.extend([7])
    assert ready.pop() == 7
    # with 2 workers the critical-path order finishes in 5 steps (the bound), id order in 7
    assert _steps(g, priority, workers=2) == 5
    assert _steps(g, {n: 0.0 for n in g.children}, workers=2) == 7


def _steps(g0: DependencyGraph, priority: dict[int, float], workers: int) -> int:
    g = DependencyGraph([(p, list(k)) for p, k in g0.children.items()])
    ready = ReadyQueue(priority, g.ready())
    steps = 0
    while g.pending:
        batch = ready.take(workers)
        for node in batch:
            g.claim(node)
        for node in batch:
            ready.extend(g.finish(node))
        steps += 1
    return steps


def test_take_while_stops_at_the_first_node_not_wanted() -> None:
    """While a round trip is on its way only nodes read ahead start, best first: the queue
    gives them until the best one left needs a claim."""
    ready = ReadyQueue({1: 5.0, 2: 4.0, 3: 3.0, 4: 2.0}, [4, 3, 2, 1])
    assert ready.take_while({1, 2, 4}, 10) == [1, 2], "3 needs a claim: 4 waits behind it"
    assert ready.take_while({3, 4}, 1) == [3]
    assert ready.take_while(set(), 5) == [] and len(ready) == 1


def test_critical_path_first_meets_the_bound_no_schedule_can_beat() -> None:
    """The benchmark's call graph of 10,000 functions with cycles, 20 ms calls, 16 workers,
    zero overhead: the issue's bound (15.76 s) cannot be met at all (5,378 nodes have chains
    of at least 586 calls above them); this priority meets the tighter bound that holds for
    every schedule of the cut DAG, arrival order is a third slower."""
    from benchmarks.run import CASES, ideal_bound, precedence_bound, session_dag

    graph = CASES["calls"][0](False)
    g = session_dag(graph)
    seconds = dict.fromkeys(range(len(graph.paths)), 0.02)
    exact = precedence_bound(graph, 16, lambda _p: 0.02)
    assert exact > ideal_bound(graph, 16, lambda _p: 0.02) / 0.95
    assert simulate_wall(g.parents, g.unfinished, seconds, 16) <= exact * 1.001
    assert simulate_wall(g.parents, g.unfinished, seconds, 16, by_priority=False) > exact * 1.3
