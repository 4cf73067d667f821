"""Graph databases: the ``GraphDB`` protocol and ``connect()``, which opens one from a URI.

Every backend returns records as plain Python values (a node becomes the dict of its
properties), so that the code above this layer never sees a driver type. The backends live in
``neo4j_backend`` (``Neo4jManager``) and ``falkordb_backend`` (``FalkorDBManager``), query
deadlines in ``deadline``; their names are importable from here too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import unquote, urlsplit

from .backend_base import DEFAULT_CONNECT_TIMEOUT_S as DEFAULT_CONNECT_TIMEOUT_S
from .deadline import DEADLINE_GRACE_S as DEADLINE_GRACE_S
from .deadline import query_deadline
from .errors import DatabaseUnavailableError, GraphDBError, QueryError
from .falkordb_backend import DEFAULT_QUERY_TIMEOUT_S as DEFAULT_QUERY_TIMEOUT_S
from .falkordb_backend import FalkorDBManager
from .neo4j_backend import Neo4jManager

__all__ = [
    "DatabaseUnavailableError",
    "FalkorDBManager",
    "GraphDB",
    "GraphDBError",
    "Neo4jManager",
    "QueryError",
    "connect",
    "query_deadline",
]

URI_ENV_VAR = "BLARIFY_LAB_URI"


@runtime_checkable
class GraphDB(Protocol):
    """What every backend offers: Cypher in, a list of plain dicts out."""

    def run_query(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_NEO4J_SCHEMES = {"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"}
_connect_lock = threading.Lock()


def connect(
    uri: str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    temporary: bool = False,
    graph: str = "blarify",
) -> FalkorDBManager | Neo4jManager:
    """Open a graph database from a URI, or the embedded FalkorDB when there is none.

    ``bolt://``, ``neo4j://`` and ``neo4j+s://`` go to Neo4j (user and password from the URI or
    from ``NEO4J_USER``/``NEO4J_PASSWORD``); ``falkordb://[:password@]host:port/graph`` goes to
    a FalkorDB server. With no URI and no ``BLARIFY_LAB_URI`` set, an embedded FalkorDB server is
    started (or reused) on a loopback port with its data under ``data_dir`` (default: the user's
    cache directory; ``temporary=True`` for a throwaway one).
    """
    uri = uri if uri is not None else os.environ.get(URI_ENV_VAR) or None
    if uri is None:
        from .embedded import EmbeddedFalkorDB

        with _connect_lock:
            server = EmbeddedFalkorDB.acquire(data_dir=data_dir, temporary=temporary)
        try:
            manager = FalkorDBManager(
                host=server.host,
                port=server.port,
                graph=graph,
                password=server.password,
                check_server=server.ensure_ours,
            )
        except BaseException:
            server.release()
            raise
        manager.add_close_callback(server.release)
        return manager

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    safe_uri = _redact(uri)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in database URI {safe_uri!r}") from None
    if scheme in _NEO4J_SCHEMES:
        user = unquote(parts.username) if parts.username else os.environ.get("NEO4J_USER", "neo4j")
        password = (
            unquote(parts.password)
            if parts.password is not None
            else os.environ.get("NEO4J_PASSWORD", "")
        )
        netloc = parts.hostname or "localhost"
        if port:
            netloc = f"{netloc}:{port}"
        database = parts.path.strip("/") or None
        return Neo4jManager(f"{scheme}://{netloc}", user=user, password=password, database=database)
    if scheme == "falkordb":
        return FalkorDBManager(
            host=parts.hostname or "127.0.0.1",
            port=port or 6379,
            graph=unquote(parts.path.strip("/")) or graph,
            password=unquote(parts.password) if parts.password else None,
        )
    raise ValueError(
        f"unsupported database URI {safe_uri!r}: use bolt://, neo4j://, neo4j+s:// or "
        "falkordb://host:port/graph, or no URI for the embedded database"
    )


def _redact(uri: str) -> str:
    """The URI with any password replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
