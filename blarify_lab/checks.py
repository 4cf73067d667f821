"""Checks of what users pass in: each raises ``ValueError`` with what to pass instead.

Everything here runs before anything is written to the graph.
"""

from __future__ import annotations

import math

from .queries import Scope

__all__ = [
    "MAX_SECONDS",
    "check_money",
    "check_path",
    "check_scope",
    "check_seconds",
    "check_timeout",
    "check_whole",
]

MAX_SECONDS = 365 * 24 * 3600.0  # a timeout or interval beyond a year is a mistake


def check_whole(value: object, name: str, minimum: int) -> int:
    """A whole number (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def check_path(path: object, what: str = "node_path") -> str:
    """A path: a non-empty string with no NUL byte and no lone surrogate.

    Paths travel as parameters, never in query text; this keeps out what no database stores
    faithfully (and what a driver fails to encode mid-session), before any query.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"{what} must be a non-empty string, got {path!r}")
    if "\0" in path:
        raise ValueError(f"{what} must not contain a NUL byte, got {path!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode (a lone surrogate): {path!r}") from None
    return path


def check_scope(scope: object) -> Scope:
    if scope == "graph":
        return "graph"
    if scope == "subtree":
        return "subtree"
    raise ValueError(f"invalid scope {scope!r}: use 'graph' or 'subtree'")


def check_seconds(value: object, name: str) -> float:
    """A finite number of seconds > 0 (and not absurdly large), else ``ValueError``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_SECONDS
    ):
        raise ValueError(
            f"{name} must be a finite number of seconds > 0 (at most {MAX_SECONDS:g}), "
            f"got {value!r}"
        )
    return float(value)


def check_money(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"max_cost_usd must be a finite number of dollars > 0, got {value!r}")
    return float(value)


def check_timeout(value: object) -> float | None:
    return None if value is None else check_seconds(value, "timeout")
