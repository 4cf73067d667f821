"""Dependency tracking without a database: readiness, cycles, depths."""

from __future__ import annotations

import random

from blarify_lab.graph import DependencyGraph, back_edges, cyclic_components, depths


def test_leaves_first_and_parents_become_ready_when_all_children_finish() -> None:
    g = DependencyGraph([(1, [2, 3]), (2, [4])])
    assert g.ready() == [3, 4]
    for node in (3, 4):
        g.claim(node)
    assert g.finish(3) == []  # 1 still waits for 2
    assert g.finish(4) == [2]
    g.claim(2)
    assert g.finish(2) == [1]
    g.claim(1)
    assert g.pending == set()


def test_isolated_nodes_are_ready_at_once() -> None:
    g = DependencyGraph([(1, [2])], nodes=[7, 8])
    assert len(g) == 4 and 7 in g and 9 not in g
    assert g.ready() == [2, 7, 8]


def test_a_cycle_is_cut_once_and_only_its_members_are_marked() -> None:
    # 1 -> 2 -> 3 -> 2 (cycle 2,3); 1 merely waits behind it
    g = DependencyGraph([(1, [2]), (2, [3]), (3, [2])])
    assert g.ready() == []
    released = g.break_cycles()
    assert released == [3]
    assert g.cycle_sources == {3}
    g.claim(3)
    assert g.finish(3) == [2]
    g.claim(2)
    assert g.finish(2) == [1]


def test_self_call_is_a_cycle() -> None:
    g = DependencyGraph([(5, [5])])
    assert cyclic_components({5}, g.children) == [[5]]
    assert g.break_cycles() == [5]
    assert g.cycle_sources == {5}


def test_back_edges_leave_no_cycle_on_random_graphs() -> None:
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(2, 30)
        children = {
            i: sorted({rng.randrange(n) for _ in range(rng.randint(0, 3))}) for i in range(n)
        }
        for component in cyclic_components(set(children), children):
            dropped = set(back_edges(component, children))
            rest = {i: [c for c in children[i] if (i, c) not in dropped] for i in component}
            assert cyclic_components(set(component), rest) == []


def test_deep_chain_needs_no_recursion() -> None:
    n = 50_000
    edges = [(i, [i + 1]) for i in range(n)] + [(n, [0])]  # one huge cycle
    g = DependencyGraph(edges)
    assert len(cyclic_components(g.pending, g.children)[0]) == n + 1
    assert depths(g.children, 0)[n] == n


def test_depths_ignore_unreachable_nodes() -> None:
    found = depths({1: [2], 2: [3], 3: [], 9: [3]}, 1)
    assert found == {1: 0, 2: 1, 3: 2}
    assert depths({1: []}, 5) == {}
