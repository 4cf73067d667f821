"""Every error blarify_lab raises, under one base: ``except BlarifyLabError`` catches them all.

::

    BlarifyLabError
    ├── GraphDBError                       the database layer
    │   ├── DatabaseUnavailableError       cannot reach the server (also a ConnectionError)
    │   └── QueryError                     the server rejected a query (backend_message)
    ├── NodeNotFoundError                  no code node has the path (also a LookupError)
    ├── AmbiguousNodeError                 a name matches several code nodes (also a ValueError)
    ├── AmbiguousTenantError               a graph of several tenants, none chosen (ValueError)
    ├── SourceConflictError                a load would remove another tree's documented nodes
    ├── ExportRefusedError                 the export folder is not empty (also a FileExistsError)
    ├── SessionNotFoundError               no trace of a session id (also a LookupError)
    ├── SessionCancelled                   SessionHandle.cancel() or the dashboard's Stop
    ├── SessionCleanupError                a session's state could not be removed
    ├── SessionStateLostError              a session's state vanished while it ran
    ├── BudgetExceededError                the session reached its max_cost_usd
    ├── LLMCallError                       an LLM call failed for good (attempts, status)
    └── PacingTimeout                      rate limits would start a call after its deadline
                                           (also a TimeoutError)

Messages say what to do next; none carries a password.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AmbiguousNodeError",
    "AmbiguousTenantError",
    "BlarifyLabError",
    "BudgetExceededError",
    "DatabaseUnavailableError",
    "ExportRefusedError",
    "GraphDBError",
    "LLMCallError",
    "NodeNotFoundError",
    "PacingTimeout",
    "QueryError",
    "SessionCancelled",
    "SessionCleanupError",
    "SessionNotFoundError",
    "SessionStateLostError",
    "SourceConflictError",
]


class BlarifyLabError(Exception):
    """Base class of every error raised by blarify_lab."""


class GraphDBError(BlarifyLabError):
    """Base class of every database error raised by blarify_lab."""


class DatabaseUnavailableError(GraphDBError, ConnectionError):
    """The server could not be reached (or went away); the message names the URI, never a password."""


class QueryError(GraphDBError):
    """The server rejected a query; ``backend_message`` holds the backend's own words."""

    def __init__(self, message: str, *, backend_message: str, query: str) -> None:
        super().__init__(message)
        self.backend_message = backend_message
        self.query = query


class NodeNotFoundError(BlarifyLabError, LookupError):
    """No code node has the requested path."""


class AmbiguousNodeError(BlarifyLabError, ValueError):
    """A root's name matches several code nodes; ``matches`` lists them (never "the first")."""

    def __init__(self, name: str, matches: list[str]) -> None:
        shown = ", ".join(repr(m) for m in matches[:10])
        more = " (and more)" if len(matches) > 10 else ""
        super().__init__(
            f"{name!r} names {len(matches)} code nodes: {shown}{more}; nothing was written. "
            "Name one of them by its identity (node_path) or key (node_id), or choose a "
            "tenant (GraphSchema.blarify(entity_id=..., repo_id=...))."
        )
        self.matches = matches


class AmbiguousTenantError(BlarifyLabError, ValueError):
    """A graph holds several tenants and none was chosen; ``tenants`` lists them."""

    def __init__(self, properties: list[str], tenants: list[tuple[object, ...]]) -> None:
        shown = "; ".join(
            ", ".join(f"{p}={v!r}" for p, v in zip(properties, t, strict=True)) for t in tenants
        )
        super().__init__(
            f"the graph holds {len(tenants)} tenants ({shown}); nothing was marked. Choose one: "
            "schema=GraphSchema.blarify(entity_id=..., repo_id=...) in Python, "
            "--entity-id/--repo-id on the command line."
        )
        self.tenants = tenants


class SourceConflictError(BlarifyLabError):
    """A load would remove documented nodes of a root loaded from another source directory
    (or from one not recorded: a root loaded before the directory was remembered).

    ``root_path`` is the root in the graph, ``source_dir`` the directory being loaded,
    ``recorded_source_dir`` the one the root was loaded from (None when not recorded),
    ``removed`` how many nodes the load would delete and ``documented`` the paths of those that
    have stored documentation. Nothing was written.
    """

    def __init__(
        self,
        root_path: str,
        *,
        source_dir: str,
        recorded_source_dir: str | None,
        removed: int,
        documented: list[str],
    ) -> None:
        self.root_path = root_path
        self.source_dir = source_dir
        self.recorded_source_dir = recorded_source_dir
        self.removed = removed
        self.documented = documented
        shown = ", ".join(documented[:3]) + (", ..." if len(documented) > 3 else "")
        if recorded_source_dir is None:
            origin = (
                f"{root_path} has no source directory recorded (it was loaded before blarify-lab "
                f"remembered one), so {source_dir} may be another tree"
            )
            advice = (
                f"if {source_dir} is the same tree, pass --replace (replace=True) once: the "
                "directory is remembered from then on"
            )
        else:
            origin = f"{root_path} was loaded from {recorded_source_dir}, not {source_dir}"
            advice = "pass --replace (replace=True) to replace it and lose that documentation"
        super().__init__(
            f"not loaded: {origin}; loading it would remove {removed} node(s) of {root_path}, "
            f"{len(documented)} of them documented ({shown}). Load it under another path with "
            f"--prefix (prefix=...), or {advice}. Nothing was written."
        )


class ExportRefusedError(BlarifyLabError, FileExistsError):
    """``export_markdown`` was pointed at a folder that is not empty, without ``force``."""

    def __init__(self, out: str, entries: list[str]) -> None:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        super().__init__(
            f"not exported: {out} is not empty ({len(entries)} entries: {shown}). Export into "
            "a new or empty folder, or pass --force (force=True): then only the pages an "
            "earlier export wrote there are replaced or removed, nothing else is touched"
        )
        self.out = out
        self.entries = entries


class SessionNotFoundError(BlarifyLabError, LookupError):
    """``cleanup_session`` found no trace of the session: no node carries its status
    property and no registry node has its id (a typo, or it was cleaned up already)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"no such session {session_id}: no node carries its state and no registry entry "
            "names it (already cleaned up?). `blarify-lab sessions list` (list_sessions(db) "
            "in Python) shows the sessions in the graph"
        )
        self.session_id = session_id


class SessionCancelled(BlarifyLabError):
    """The session was cancelled (``SessionHandle.cancel()`` or the dashboard's Stop button)."""


class SessionCleanupError(BlarifyLabError, RuntimeError):
    """A session's traces could not be removed; the message says how to remove them later."""

    def __init__(self, session_id: str, cause: BaseException) -> None:
        reason = " ".join(str(cause).split()).rstrip(".")
        super().__init__(
            f"could not clean up session {session_id}: {reason}. Its state is still in the "
            f"graph; remove it once the database is back with "
            f"blarify_lab.cleanup_session(db, {session_id!r}) or "
            f"`blarify-lab sessions cleanup --session {session_id}`"
        )
        self.session_id = session_id


class SessionStateLostError(BlarifyLabError, RuntimeError):
    """Nodes of a running session vanished from the graph, or lost their session state (the
    session was cleaned up by someone else, or the graph was changed under it)."""

    def __init__(self, session_id: str, lost: int) -> None:
        super().__init__(
            f"session {session_id}: {lost} node(s) vanished from the graph or lost their "
            "session state while the session ran (was the session cleaned up by someone else, "
            "e.g. cleanup_leftovers(force=True)?). Run it again."
        )
        self.session_id = session_id
        self.lost = lost


class BudgetExceededError(BlarifyLabError):
    """The session reached its ``max_cost_usd``: what was done is stored, the rest is not.

    Running the same ``process_node`` again resumes from the stored documentation.
    """

    def __init__(self, session_id: str, spent_usd: float, budget_usd: float) -> None:
        super().__init__(
            f"session {session_id} stopped: it spent ${spent_usd:.4f} of its "
            f"max_cost_usd=${budget_usd:.4f}. What it documented is stored; run it again "
            "(with a higher max_cost_usd) to resume from there."
        )
        self.session_id = session_id
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd


RetryReason = Literal["permanent", "retries_exhausted", "deadline", "retry_wait_too_long"]


class LLMCallError(BlarifyLabError):
    """An LLM call failed for good: permanently, after its last retry, or at its deadline.

    ``attempts`` is the number of calls made (each counted once), ``status_code`` the HTTP
    status of the last failure (None for a timeout, a dropped connection or a non-HTTP error),
    ``reason`` why it stopped, ``server_message`` the server's (or exception's) own words, and
    ``__cause__`` the last exception itself.
    """

    def __init__(
        self,
        cause: BaseException,
        *,
        attempts: int,
        reason: RetryReason,
        status_code: int | None = None,
        server_message: str = "",
    ) -> None:
        self.attempts = attempts
        self.reason = reason
        self.status_code = status_code
        self.server_message = server_message
        what = type(cause).__name__ + (f" (HTTP {status_code})" if status_code else "")
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        why = {
            "permanent": "not retried",
            "retries_exhausted": "retries exhausted",
            "deadline": "the next retry would cross the deadline",
            "retry_wait_too_long": "the server asked to wait longer than max_retry_wait_s",
        }[reason]
        super().__init__(f"LLM call failed after {tries} ({why}): {what}: {self.server_message}")


class PacingTimeout(BlarifyLabError, TimeoutError):
    """The rate limits would only let the request start after its deadline."""
