"""Mutual recursion: is_even and is_odd call each other (a two-node call cycle)."""


def is_even(n: int) -> bool:
    """True when n is even."""
    return True if n == 0 else is_odd(n - 1)


def is_odd(n: int) -> bool:
    """True when n is odd."""
    return False if n == 0 else is_even(n - 1)
