"""The names blarify_lab writes into Cypher text, and the check every such name passes.

Labels and relationship types cannot be query parameters, so each one is an ASCII identifier,
checked by ``validate_identifier`` before it is spliced in (``queries`` and ``schema`` use it).
"""

from __future__ import annotations

import re

__all__ = ["DESCRIBES", "DOCUMENTATION_LABEL", "SESSION_LABEL", "validate_identifier"]

SESSION_LABEL = "BLARIFY_SESSION"
DOCUMENTATION_LABEL = "DOCUMENTATION"
DESCRIBES = "DESCRIBES"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def validate_identifier(name: object, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain ASCII identifier (label or relationship type), else raise."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(
            f"invalid {what} {name!r}: use letters, digits and underscores only "
            "(at most 64, not starting with a digit)"
        )
    return name
