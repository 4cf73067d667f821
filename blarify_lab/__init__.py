"""blarify_lab: document a code graph bottom-up with an LLM, one isolated session at a time.

Quick start::

    import blarify_lab as bl
    db = bl.connect()                              # embedded FalkorDB, nothing to install
    bl.load_python_package(db, "path/to/package")
    processor = bl.RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), max_workers=8)
    print(processor.process_node("/package", scope="subtree"))
    bl.list_sessions(db)                           # sessions running or left behind

The public API is the names below; everything else is importable from its module
(``blarify_lab.db``, ``.queries``, ``.registry``, ``.session``, ``.llm``, ...).
"""

from typing import TYPE_CHECKING, Any

from .db import connect
from .documentation import documentation, export_markdown
from .errors import (
    AmbiguousNodeError,
    AmbiguousTenantError,
    BlarifyLabError,
    BudgetExceededError,
    DatabaseUnavailableError,
    NodeNotFoundError,
    SessionCancelled,
    SessionCleanupError,
    SessionNotFoundError,
    SourceConflictError,
)
from .handles import SessionHandle
from .leftovers import cleanup_leftovers, cleanup_session, list_sessions
from .llm import ExtractiveSummarizer
from .loader import load_python_package
from .openai_chat import OpenAIChat
from .processor import RecursiveDFSProcessor
from .schema import GraphSchema
from .session import ProcessingSession

if TYPE_CHECKING:
    from .dashboard import SessionDashboard

__version__ = "0.2.0"

# Names that lived here before 0.2, still importable from here (not part of the public API).
_MOVED = {
    "FalkorDBManager": "db",
    "GraphDB": "db",
    "Neo4jManager": "db",
    "GraphDBError": "errors",
    "QueryError": "errors",
    "SessionStateLostError": "errors",
    "LLMProvider": "llm",
    "as_llm_provider": "llm",
    "LoadedPackage": "loader",
    "NodeRecord": "session",
}


def __getattr__(name: str) -> Any:
    """``SessionDashboard`` is imported on first use (it needs the ``notebooks`` extra)."""
    import importlib

    if name == "SessionDashboard":
        from .dashboard import SessionDashboard

        return SessionDashboard
    if name in _MOVED:
        return getattr(importlib.import_module(f".{_MOVED[name]}", __name__), name)
    raise AttributeError(f"module 'blarify_lab' has no attribute {name!r}")


__all__ = [
    "AmbiguousNodeError",
    "AmbiguousTenantError",
    "BlarifyLabError",
    "BudgetExceededError",
    "DatabaseUnavailableError",
    "ExtractiveSummarizer",
    "GraphSchema",
    "NodeNotFoundError",
    "OpenAIChat",
    "ProcessingSession",
    "RecursiveDFSProcessor",
    "SessionCancelled",
    "SessionCleanupError",
    "SessionDashboard",
    "SessionHandle",
    "SessionNotFoundError",
    "SourceConflictError",
    "__version__",
    "cleanup_leftovers",
    "cleanup_session",
    "connect",
    "documentation",
    "export_markdown",
    "list_sessions",
    "load_python_package",
]
