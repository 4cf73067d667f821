"""The Neo4j backend: ``Neo4jManager``, through the official driver, with plain values out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString, cast

from .backend_base import DEFAULT_CONNECT_TIMEOUT_S, ManagerBase, one_line, query_error
from .deadline import seconds_left
from .errors import DatabaseUnavailableError

__all__ = ["Neo4jManager"]


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


class Neo4jManager(ManagerBase):
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
                f"cannot reach Neo4j at {uri}: {type(err).__name__}: {one_line(err)}"
            ) from None
        try:
            self._driver.verify_connectivity()
        except AuthError as err:
            self._driver.close()
            raise DatabaseUnavailableError(
                f"cannot log in to Neo4j at {uri} as {user!r}: {one_line(err.message or err)}"
            ) from None
        except Exception as err:  # ServiceUnavailable, DriverError, garbage on the socket...
            self._driver.close()
            raise DatabaseUnavailableError(
                f"cannot reach Neo4j at {uri}: {type(err).__name__}: {one_line(err)}. "
                "Check that the server runs and the URI is right"
            ) from None

    def run_query(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        import neo4j
        from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

        if self._closed:
            raise DatabaseUnavailableError(f"the connection to {self.uri} is closed")
        remaining = seconds_left()
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
                f"lost the connection to Neo4j at {self.uri}: {one_line(err)}"
            ) from err
        except (Neo4jError, DriverError) as err:
            if remaining is not None and "TransactionTimedOut" in str(getattr(err, "code", "")):
                raise DatabaseUnavailableError(
                    f"Neo4j at {self.uri} did not answer within {remaining:.0f} s "
                    "(the query deadline)"
                ) from err
            raise query_error(query, err) from err

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._driver.close()

    def __repr__(self) -> str:
        return f"Neo4jManager(uri={self.uri!r}, user={self.user!r}, database={self.database!r})"
