"""Graph database backends: one small protocol, a Neo4j and a FalkorDB implementation.

Every backend returns records as plain Python values (a node becomes the dict of its
properties), so that the code above this layer never sees a driver type.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, LiteralString, Protocol, Self, cast, runtime_checkable
from urllib.parse import unquote, urlsplit

from .errors import DatabaseUnavailableError, GraphDBError, QueryError

if TYPE_CHECKING:
    import redis

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

DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_QUERY_TIMEOUT_S = 60.0  # a query that has not answered by then is reported, not waited for
DEADLINE_GRACE_S = 2.0
URI_ENV_VAR = "BLARIFY_LAB_URI"

# the monotonic time after which this context's queries stop waiting (deadline + grace)
_cutoff: ContextVar[float | None] = ContextVar("blarify_lab_query_cutoff", default=None)


@contextlib.contextmanager
def query_deadline(deadline: float | None, *, grace: float = DEADLINE_GRACE_S) -> Iterator[None]:
    """Bound the queries this thread (context) sends inside the block by a deadline.

    ``deadline`` is a ``time.monotonic()`` value (``None``: no bound). A query still waiting for
    its answer ``grace`` seconds after the deadline fails with a one-line
    ``DatabaseUnavailableError`` ("... did not answer within N s ..."), so that a session never
    outlives its deadline by more than the grace, even on a server that stopped answering. Nested
    blocks keep the earlier bound. FalkorDB bounds each read of the socket by the time left;
    Neo4j sends the time left as the transaction timeout, which the server enforces (a Neo4j
    server that stopped answering altogether is bounded only by the driver's own timeouts).
    """
    cutoff = None if deadline is None else deadline + grace
    outer = _cutoff.get()
    if outer is not None and (cutoff is None or outer < cutoff):
        cutoff = outer
    token = _cutoff.set(cutoff)
    try:
        yield
    finally:
        _cutoff.reset(token)


def _remaining() -> float | None:
    """Seconds left before this context's query cut-off (``None``: unbounded)."""
    cutoff = _cutoff.get()
    return None if cutoff is None else cutoff - time.monotonic()


def _one_line(err: BaseException | str) -> str:
    """A driver message on one line and without a final full stop (we add our own)."""
    return " ".join(str(err).split()).rstrip(".")


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


class _ManagerBase:
    """Context-manager plumbing shared by the backends."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _query_error(query: str, err: BaseException) -> QueryError:
    first_line = " ".join(query.split())[:120]
    return QueryError(
        f"query failed: {_one_line(err)} (query: {first_line})",
        backend_message=str(err),
        query=query,
    )


# --------------------------------------------------------------------------------------- Neo4j


def _plain_neo4j(value: Any) -> Any:
    """Turn neo4j driver values into plain Python values."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node | Relationship):
        return {k: _plain_neo4j(v) for k, v in value.items()}
    if isinstance(value, Path):
        return [_plain_neo4j(n) for n in value.nodes]
    if isinstance(value, list | tuple):
        return [_plain_neo4j(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        return {k: _plain_neo4j(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    to_native = getattr(value, "to_native", None)
    if callable(to_native):
        return to_native()
    return value


class Neo4jManager(_ManagerBase):
    """A Neo4j database reached through the official driver.

    Each ``run_query`` is one auto-commit transaction, so that ``CALL {...} IN TRANSACTIONS``
    works; the manager is safe to share between threads.
    """

    backend = "neo4j"

    def __init__(
        self,
        uri: str,
        user: str = "neo4j",
        password: str = "",
        database: str | None = None,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        import neo4j
        from neo4j.exceptions import AuthError

        self.uri = uri
        self.user = user
        self.database = database
        self._closed = False
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=(user, password),
                connection_timeout=connect_timeout,
                # the Bolt handshake is bounded by this one: a server of another protocol on
                # the port (which never answers the handshake) is reported within it
                connection_acquisition_timeout=connect_timeout,
                max_transaction_retry_time=connect_timeout,
            )
        except Exception as err:  # a malformed URI or configuration
            raise DatabaseUnavailableError(
                f"cannot reach Neo4j at {uri}: {type(err).__name__}: {_one_line(err)}"
            ) from None
        try:
            self._driver.verify_connectivity()
        except AuthError as err:
            self._driver.close()
            raise DatabaseUnavailableError(
                f"cannot log in to Neo4j at {uri} as {user!r}: {_one_line(err.message or err)}"
            ) from None
        except Exception as err:  # ServiceUnavailable, DriverError, garbage on the socket...
            self._driver.close()
            raise DatabaseUnavailableError(
                f"cannot reach Neo4j at {uri}: {type(err).__name__}: {_one_line(err)}. "
                "Check that the server runs and the URI is right"
            ) from None

    def run_query(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        import neo4j
        from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

        if self._closed:
            raise DatabaseUnavailableError(f"the connection to {self.uri} is closed")
        remaining = _remaining()
        if remaining is not None and remaining <= 0:
            raise DatabaseUnavailableError(
                f"Neo4j at {self.uri}: the query deadline passed before the query was sent"
            )
        try:
            with self._driver.session(database=self.database) as session:
                text: Any = (
                    query
                    if remaining is None
                    else neo4j.Query(cast(LiteralString, query), timeout=remaining)
                )
                result = session.run(text, dict(params or {}))
                return [{k: _plain_neo4j(v) for k, v in rec.items()} for rec in result]
        except (ServiceUnavailable, SessionExpired, OSError) as err:
            raise DatabaseUnavailableError(
                f"lost the connection to Neo4j at {self.uri}: {_one_line(err)}"
            ) from err
        except (Neo4jError, DriverError) as err:
            if remaining is not None and "TransactionTimedOut" in str(getattr(err, "code", "")):
                raise DatabaseUnavailableError(
                    f"Neo4j at {self.uri} did not answer within {remaining:.0f} s "
                    "(the query deadline)"
                ) from err
            raise _query_error(query, err) from err

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._driver.close()

    def __repr__(self) -> str:
        return f"Neo4jManager(uri={self.uri!r}, user={self.user!r}, database={self.database!r})"


# ------------------------------------------------------------------------------------ FalkorDB


def _plain_falkor(value: Any) -> Any:
    """Turn falkordb client values into plain Python values."""
    from falkordb import Edge, Node, Path

    if isinstance(value, Node | Edge):
        return {k: _plain_falkor(v) for k, v in value.properties.items()}
    if isinstance(value, Path):
        return [_plain_falkor(n) for n in value.nodes()]
    if isinstance(value, list | tuple):
        return [_plain_falkor(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        return {k: _plain_falkor(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    return value


@functools.cache
def _deadline_connection_class() -> type[redis.Connection]:
    """A redis-py connection whose reads honour ``query_deadline``."""
    import redis
    import redis.exceptions
    from redis.utils import SENTINEL

    class DeadlineConnection(redis.Connection):
        def read_response(
            self,
            disable_decoding: bool = False,
            *,
            timeout: float | object = SENTINEL,
            disconnect_on_error: bool = True,
            push_request: bool = False,
        ) -> Any:
            remaining = _remaining()
            if remaining is not None and timeout is SENTINEL:
                if remaining <= 0:
                    if disconnect_on_error:
                        self.disconnect()  # the answer may still come: never read it later
                    raise redis.exceptions.TimeoutError("the query deadline passed")
                default = self.socket_timeout
                timeout = remaining if default is None else min(default, remaining)
            return super().read_response(
                disable_decoding,
                timeout=timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )

    return DeadlineConnection


class FalkorDBManager(_ManagerBase):
    """A FalkorDB graph reached through the ``falkordb`` client (Redis protocol, not Bolt).

    Safe to share between threads: the client keeps a connection pool. Connecting fails within
    about ``connect_timeout`` seconds, and a query that has not answered within
    ``query_timeout`` seconds (or by the cut-off of ``query_deadline``) fails, each with a
    one-line ``DatabaseUnavailableError``. A query is retried once on a dropped connection
    (a server restart), never after a timeout (it may have run).
    """

    backend = "falkordb"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        graph: str = "blarify",
        password: str | None = None,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        query_timeout: float | None = DEFAULT_QUERY_TIMEOUT_S,
    ) -> None:
        import redis
        import redis.exceptions
        from falkordb import FalkorDB
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.host = host
        self.port = port
        self.graph_name = graph
        self.uri = f"falkordb://{host}:{port}/{graph}"
        self.query_timeout = query_timeout
        self._closed = False
        self._on_close: list[Any] = []
        pool = redis.ConnectionPool(
            connection_class=_deadline_connection_class(),
            host=host,
            port=port,
            password=password,
            socket_connect_timeout=connect_timeout,
            socket_timeout=query_timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )
        try:
            # the client asks the server about itself on creation: bound that and the PING
            with query_deadline(time.monotonic() + connect_timeout, grace=0):
                self._client = FalkorDB(connection_pool=pool)
                self._client.connection.ping()
        except redis.exceptions.AuthenticationError as err:
            pool.disconnect()
            raise DatabaseUnavailableError(
                f"cannot log in to FalkorDB at {self.uri}: {_one_line(err)}"
            ) from None
        except redis.exceptions.TimeoutError:
            pool.disconnect()
            raise DatabaseUnavailableError(
                f"FalkorDB at {self.uri} accepted the connection but did not answer within "
                f"{connect_timeout:g} s (is the server paused or overloaded?)"
            ) from None
        except redis.exceptions.ResponseError as err:
            pool.disconnect()
            what = "log in to" if "AUTH" in str(err).upper() else "use"
            raise DatabaseUnavailableError(
                f"cannot {what} FalkorDB at {self.uri}: {_one_line(err)}"
            ) from None
        except Exception as err:  # refused, reset, garbage from a server of another protocol
            pool.disconnect()
            raise DatabaseUnavailableError(
                f"cannot reach FalkorDB at {self.uri}: {_one_line(err)}. Check that a FalkorDB "
                "server runs there, or call blarify_lab.connect() with no URI to start the "
                "embedded one"
            ) from None
        self._pool = pool
        self._graph = self._client.select_graph(graph)

    def run_query(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        import redis.exceptions

        if self._closed:
            raise DatabaseUnavailableError(f"the connection to {self.uri} is closed")
        started = time.monotonic()
        try:
            result = self._graph.query(query, dict(params) if params else None)
        except redis.exceptions.TimeoutError:
            deadline = _remaining() is not None
            raise DatabaseUnavailableError(
                f"FalkorDB at {self.uri} did not answer within "
                f"{time.monotonic() - started:.0f} s"
                + (" (the query deadline)" if deadline else "")
                + "; is the server paused or overloaded?"
            ) from None
        except (
            redis.exceptions.ConnectionError,
            redis.exceptions.InvalidResponse,
            OSError,
        ) as err:
            raise DatabaseUnavailableError(
                f"lost the connection to FalkorDB at {self.uri}: {_one_line(err)}"
            ) from err
        except redis.exceptions.ResponseError as err:
            raise _query_error(query, err) from err
        columns = [h[1] if isinstance(h, list | tuple) else h for h in result.header]
        return [
            {str(c): _plain_falkor(v) for c, v in zip(columns, row, strict=False)}
            for row in result.result_set
        ]

    def delete_graph(self) -> None:
        """Drop the whole graph (tests and demos use this; it cannot be undone)."""
        import redis.exceptions

        try:
            self._graph.delete()
        except redis.exceptions.ResponseError as err:
            if "empty key" not in str(err) and "Invalid graph" not in str(err):
                raise _query_error("GRAPH.DELETE", err) from err

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._client.connection.close()
            self._pool.disconnect()  # a pool we made ourselves is ours to close
        finally:
            callbacks, self._on_close = self._on_close, []
            for callback in callbacks:
                callback()

    def __repr__(self) -> str:
        return f"FalkorDBManager(uri={self.uri!r})"


# ------------------------------------------------------------------------------------- connect

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
                host=server.host, port=server.port, graph=graph, password=server.password
            )
        except BaseException:
            server.release()
            raise
        manager._on_close.append(server.release)  # pyright: ignore[reportPrivateUsage]
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
