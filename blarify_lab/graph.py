"""Pure dependency tracking for one session: who waits on whom, what is ready, how cycles are cut.

No database and no threads: the scheduler feeds it edges once, then tells it which nodes
finished; it answers which parents became ready. Cycles are found with an iterative Tarjan
(deep graphs cannot overflow the stack) and cut by dropping the back edges of one
deterministic depth-first search, so a cyclic component becomes a DAG and runs in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["DependencyGraph", "back_edges", "cyclic_components", "depths"]


class DependencyGraph:
    """Readiness counts over a parent -> children graph (a node waits for all its children).

    ``children[p]`` are the nodes ``p`` depends on; every node appears as a key of both
    ``children`` and ``parents``.
    """

    def __init__(self, edges: Iterable[tuple[int, Sequence[int]]], nodes: Iterable[int] = ()):
        children: dict[int, list[int]] = {}
        parents: dict[int, list[int]] = {}
        for parent, kids in edges:
            children.setdefault(parent, []).extend(kids)
            parents.setdefault(parent, [])
            for kid in kids:
                parents.setdefault(kid, []).append(parent)
                children.setdefault(kid, [])
        for node in nodes:
            children.setdefault(node, [])
            parents.setdefault(node, [])
        self.children = children
        self.parents = parents
        self.unfinished = {node: len(kids) for node, kids in children.items()}
        self.pending: set[int] = set(children)
        self.cycle_sources: set[int] = set()
        self.cut: set[tuple[int, int]] = set()  # (source, child) edges dropped by a cut

    def __len__(self) -> int:
        return len(self.children)

    def __contains__(self, node: object) -> bool:
        return node in self.children

    def ready(self) -> list[int]:
        """Pending nodes whose children are all finished, in id order."""
        return sorted(n for n in self.pending if self.unfinished[n] == 0)

    def claim(self, node: int) -> None:
        """``node`` was handed to a worker: it is no longer pending."""
        self.pending.discard(node)

    def finish(self, node: int) -> list[int]:
        """``node`` finished (documented or failed); returns the parents that became ready."""
        ready: list[int] = []
        for parent in self.parents.get(node, ()):
            if parent in self.pending:
                self.unfinished[parent] -= 1
                if self.unfinished[parent] == 0:
                    ready.append(parent)
        return ready

    def break_cycles(self) -> list[int]:
        """Nothing is ready and nothing runs, so every pending node waits on a cycle.

        Every cyclic component among the pending nodes is cut by dropping the back edges of
        one depth-first search; the source of each dropped edge is recorded in
        ``cycle_sources`` (it will be documented without that child). Nodes merely waiting
        behind a cycle are never recorded. Returns the nodes that became ready.

        Called when the structure is read, every cyclic component is pending, so the cut is
        the one a stall would make; a second call finds no cycle left and cuts nothing.
        """
        children: Mapping[int, Sequence[int]] = self.children
        if self.cut:
            children = {
                n: [c for c in kids if (n, c) not in self.cut] for n, kids in children.items()
            }
        released: list[int] = []
        for component in cyclic_components(self.pending, children):
            for source, target in back_edges(component, children):
                self.cut.add((source, target))
                self.cycle_sources.add(source)
                self.unfinished[source] -= 1
                self.parents[target].remove(source)  # its finishing no longer counts for source
            released.extend(n for n in component if self.unfinished[n] == 0)
        return sorted(released)


def cyclic_components(pending: set[int], children: Mapping[int, Sequence[int]]) -> list[list[int]]:
    """Strongly connected components of the ``pending`` subgraph that contain a cycle (more
    than one node, or a node that depends on itself)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for start in sorted(pending):
        if start in index:
            continue
        work: list[tuple[int, int, list[int]]] = [(start, 0, [])]
        while work:
            node, i, kids = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
                kids = [c for c in children.get(node, ()) if c in pending]  # once per node
            if i < len(kids):
                work.append((node, i + 1, kids))
                child = kids[i]
                if child not in index:
                    work.append((child, 0, []))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                members: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                components.append(members)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return [
        members
        for members in components
        if len(members) > 1 or members[0] in children.get(members[0], ())
    ]


def back_edges(
    component: list[int], children: Mapping[int, Sequence[int]]
) -> list[tuple[int, int]]:
    """Edges of a depth-first search (from the lowest id, children in id order) that point back
    to a node still on the search path: removing them all leaves no cycle."""
    members = set(component)
    state: dict[int, int] = {}  # 1 on the path, 2 done
    back: list[tuple[int, int]] = []
    for start in sorted(component):
        if start in state:
            continue
        state[start] = 1
        work: list[tuple[int, list[int], int]] = [
            (start, sorted(c for c in children.get(start, ()) if c in members), 0)
        ]
        while work:
            node, kids, i = work.pop()
            if i == len(kids):
                state[node] = 2
                continue
            work.append((node, kids, i + 1))
            child = kids[i]
            seen = state.get(child)
            if seen == 1:
                back.append((node, child))
            elif seen is None:
                state[child] = 1
                grandkids = sorted(c for c in children.get(child, ()) if c in members)
                work.append((child, grandkids, 0))
    return back


def depths(children: Mapping[int, Sequence[int]], root: int) -> dict[int, int]:
    """Breadth-first distance of every node reachable from ``root`` (the root is 0)."""
    if root not in children:
        return {}
    found = {root: 0}
    frontier = [root]
    while frontier:
        nxt: list[int] = []
        for node in frontier:
            for child in children.get(node, ()):
                if child not in found:
                    found[child] = found[node] + 1
                    nxt.append(child)
        frontier = nxt
    return found
