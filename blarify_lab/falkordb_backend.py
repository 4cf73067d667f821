"""The FalkorDB backend: ``FalkorDBManager``, through the ``falkordb`` client (Redis protocol).

Reads of the socket honour ``query_deadline`` (each ``recv``, so a trickling server cannot
stretch one); values come out as plain Python values.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .backend_base import DEFAULT_CONNECT_TIMEOUT_S, ManagerBase, one_line, query_error
from .deadline import query_deadline, seconds_left
from .errors import DatabaseUnavailableError

if TYPE_CHECKING:
    import redis

__all__ = ["DEFAULT_QUERY_TIMEOUT_S", "FalkorDBManager"]

DEFAULT_QUERY_TIMEOUT_S = 60.0  # a query that has not answered by then is reported, not waited for


_SCALARS = frozenset({str, int, float, bool})


def _plain_falkor(value: Any) -> Any:
    """Turn falkordb client values into plain Python values."""
    if value is None or type(value) in _SCALARS:  # most values: no import, no walk
        return value
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


T = TypeVar("T")


class _DeadlineSocket:
    """A socket whose every ``recv`` waits no longer than the query deadline leaves, so that a
    server answering one byte at a time cannot stretch a query past it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def recv(self, size: int, *flags: int) -> bytes:
        return self._bounded(self._sock.recv, size, *flags)

    def recv_into(self, buffer: Any, *args: int) -> int:  # the hiredis parser's read
        return self._bounded(self._sock.recv_into, buffer, *args)

    def _bounded(self, read: Callable[..., T], *args: Any) -> T:
        remaining = seconds_left()
        if remaining is None:
            return read(*args)
        if remaining <= 0:
            raise TimeoutError("the query deadline passed")  # socket.timeout
        saved = self._sock.gettimeout()
        self._sock.settimeout(remaining if saved is None else min(saved, remaining))
        try:
            return read(*args)
        finally:
            self._sock.settimeout(saved)


@functools.cache
def _deadline_connection_class() -> type[redis.Connection]:
    """A redis-py connection whose reads honour ``query_deadline``."""
    import redis
    import redis.exceptions
    from redis.utils import SENTINEL

    class DeadlineConnection(redis.Connection):
        def _connect(self) -> Any:
            return _DeadlineSocket(super()._connect())

        def read_response(
            self,
            disable_decoding: bool = False,
            *,
            timeout: float | object = SENTINEL,
            disconnect_on_error: bool = True,
            push_request: bool = False,
        ) -> Any:
            remaining = seconds_left()
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


def _checked_connection_class(check_server: Callable[[], None]) -> type[redis.Connection]:
    """A deadline connection that calls ``check_server()`` on every new socket before it sends
    anything (the password included): ``check_server`` raises when the server is not ours."""
    base = _deadline_connection_class()

    class CheckedConnection(base):  # pyright: ignore[reportGeneralTypeIssues, reportUntypedBaseClass]
        def on_connect_check_health(self, check_health: bool = True) -> None:
            try:
                check_server()
            except BaseException:
                self.disconnect()
                raise
            super().on_connect_check_health(check_health)  # pyright: ignore[reportUnknownMemberType]

    return CheckedConnection


class FalkorDBManager(ManagerBase):
    """A FalkorDB graph reached through the ``falkordb`` client (Redis protocol, not Bolt).

    Safe to share between threads: the client keeps a connection pool. Connecting fails within
    about ``connect_timeout`` seconds, and a query that has not answered within
    ``query_timeout`` seconds (or by the cut-off of ``query_deadline``) fails, each with a
    one-line ``DatabaseUnavailableError``; a query sent outside any ``query_deadline`` gets
    one of ``query_timeout`` seconds for the whole answer (not per read). A query is retried
    once on a dropped connection (a server restart), never after a timeout (it may have run).
    ``check_server``, if given, is called before anything is sent on a new connection (the
    embedded server's: is it still the process that was started?) and raises if not.
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
        check_server: Callable[[], None] | None = None,
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
        self._shared = False
        self._on_close: list[Callable[[], object]] = []
        pool = redis.ConnectionPool(
            connection_class=(
                _deadline_connection_class()
                if check_server is None
                else _checked_connection_class(check_server)
            ),
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
        except DatabaseUnavailableError:
            pool.disconnect()
            raise
        except redis.exceptions.AuthenticationError as err:
            pool.disconnect()
            raise DatabaseUnavailableError(
                f"cannot log in to FalkorDB at {self.uri}: {one_line(err)}"
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
                f"cannot {what} FalkorDB at {self.uri}: {one_line(err)}"
            ) from None
        except Exception as err:  # refused, reset, garbage from a server of another protocol
            pool.disconnect()
            raise DatabaseUnavailableError(
                f"cannot reach FalkorDB at {self.uri}: {one_line(err)}. Check that a FalkorDB "
                "server runs there, or use the embedded one (connect() with no URI; no --uri "
                "in the CLI)"
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
        default = None
        if seconds_left() is None and self.query_timeout is not None:
            default = started + self.query_timeout  # a whole answer's bound, not each read's
        try:
            with query_deadline(default, grace=0):
                result = self._graph.query(query, dict(params) if params else None)
        except DatabaseUnavailableError:
            raise  # the server is not ours any more (check_server)
        except redis.exceptions.TimeoutError:
            deadline = seconds_left() is not None
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
                f"lost the connection to FalkorDB at {self.uri}: {one_line(err)}"
            ) from err
        except redis.exceptions.ResponseError as err:
            raise query_error(query, err) from err
        columns = [h[1] if isinstance(h, list | tuple) else h for h in result.header]
        return [
            {str(c): _plain_falkor(v) for c, v in zip(columns, row, strict=False)}
            for row in result.result_set
        ]

    def select_graph(self, graph: str) -> FalkorDBManager:
        """Another graph on the same server, sharing this manager's connections: closing it
        leaves them to this one (close this one last)."""
        other = object.__new__(FalkorDBManager)
        vars(other).update(vars(self))
        other.graph_name = graph
        other.uri = f"falkordb://{self.host}:{self.port}/{graph}"
        other._graph = self._client.select_graph(graph)
        other._closed = False
        other._on_close = []
        other._shared = True
        return other

    def delete_graph(self) -> None:
        """Drop the whole graph (tests and demos use this; it cannot be undone)."""
        import redis.exceptions

        try:
            self._graph.delete()
        except redis.exceptions.ResponseError as err:
            if "empty key" not in str(err) and "Invalid graph" not in str(err):
                raise query_error("GRAPH.DELETE", err) from err

    def add_close_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once when this manager is closed (after its connections are)."""
        self._on_close.append(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if not self._shared:  # a graph selected from another manager leaves them to it
                self._client.connection.close()
                self._pool.disconnect()  # a pool we made ourselves is ours to close
        finally:
            callbacks, self._on_close = self._on_close, []
            for callback in callbacks:
                callback()

    def __repr__(self) -> str:
        return f"FalkorDBManager(uri={self.uri!r})"
