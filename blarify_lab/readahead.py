"""Which parents to read ahead: those whose last unclaimed child was just claimed.

Pure logic. A parent becomes ready the moment its last child finishes; if its content is
already in memory it starts at once, with no round trip between the child and the parent.
Reading a parent when its last child is claimed (in the same query) keeps memory bounded by
the nodes in flight: only parents about to become ready are held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["ReadAhead"]


class ReadAhead:
    """Counts each node's unclaimed children; says which parents to read with a claim."""

    def __init__(self, parents: Mapping[int, Sequence[int]], unfinished: Mapping[int, int]) -> None:
        self._parents = parents
        self._unclaimed = dict(unfinished)  # children (after the cut) not yet claimed

    def claimed(self, nodes: Iterable[int]) -> list[int]:
        """``nodes`` were claimed: the parents now waiting only on claimed children."""
        due: list[int] = []
        for node in nodes:
            for parent in self._parents.get(node, ()):
                left = self._unclaimed.get(parent, 0) - 1
                self._unclaimed[parent] = left
                if left == 0:
                    due.append(parent)
        return due
