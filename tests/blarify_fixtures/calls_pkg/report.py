"""Describes grids; calls back into shapes (a cross-module call cycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .shapes import Grid


def describe(grid: Grid) -> str:
    """Names the size of a grid and whether it is balanced."""
    kind = "balanced" if grid.balanced() else "unbalanced"
    return f"{grid.width}x{grid.height} ({kind})"


def summary(grids: list[Grid]) -> str:
    """One line per grid."""
    return "\n".join(describe(g) for g in grids)
