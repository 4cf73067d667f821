"""A class whose methods call each other and a function of another module."""

from .parity import is_even
from .report import describe


class Grid:
    """A width by height grid of cells."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height

    def cells(self) -> int:
        """How many cells the grid has."""
        return self.width * self.height

    def balanced(self) -> bool:
        """True when the grid has an even number of cells."""
        return is_even(self.cells())

    def label(self) -> str:
        """A one-line description of the grid."""
        return describe(self)
