"""blarify_lab: document a code graph bottom-up with an LLM, one isolated session at a time.

Quick start::

    import blarify_lab as bl
    db = bl.connect()                              # embedded FalkorDB, nothing to install
    bl.load_python_package(db, "path/to/package")
    processor = bl.RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), max_workers=8)
    print(processor.process_node("/package"))
    bl.list_sessions(db)                           # sessions running or left behind
"""

from typing import TYPE_CHECKING, Any

from .db import (
    DatabaseUnavailableError,
    FalkorDBManager,
    GraphDB,
    GraphDBError,
    Neo4jManager,
    QueryError,
    connect,
)
from .handles import SessionHandle
from .llm import ExtractiveSummarizer, LLMProvider, as_llm_provider
from .loader import LoadedPackage, load_python_package
from .processor import NodeNotFoundError, RecursiveDFSProcessor, SessionCancelled
from .sessions import (
    NodeRecord,
    ProcessingSession,
    SessionCleanupError,
    cleanup_leftovers,
    cleanup_session,
    list_sessions,
)

if TYPE_CHECKING:
    from .dashboard import SessionDashboard

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``SessionDashboard`` is imported on first use: it needs the ``notebooks`` extra."""
    if name == "SessionDashboard":
        from .dashboard import SessionDashboard

        return SessionDashboard
    raise AttributeError(f"module 'blarify_lab' has no attribute {name!r}")


__all__ = [
    "DatabaseUnavailableError",
    "ExtractiveSummarizer",
    "FalkorDBManager",
    "GraphDB",
    "GraphDBError",
    "LLMProvider",
    "LoadedPackage",
    "Neo4jManager",
    "NodeNotFoundError",
    "NodeRecord",
    "ProcessingSession",
    "QueryError",
    "RecursiveDFSProcessor",
    "SessionCancelled",
    "SessionCleanupError",
    "SessionDashboard",
    "SessionHandle",
    "__version__",
    "as_llm_provider",
    "cleanup_leftovers",
    "cleanup_session",
    "connect",
    "list_sessions",
    "load_python_package",
]
