"""What the database backends share: the context-manager base, connect timeout, error wording."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from .errors import QueryError

__all__ = ["DEFAULT_CONNECT_TIMEOUT_S", "ManagerBase", "one_line", "query_error"]

DEFAULT_CONNECT_TIMEOUT_S = 5.0


def one_line(err: BaseException | str) -> str:
    """A driver message on one line and without a final full stop (we add our own)."""
    return " ".join(str(err).split()).rstrip(".")


def query_error(query: str, err: BaseException) -> QueryError:
    """The ``QueryError`` for a query the server refused: one line, with the query's start."""
    first_line = " ".join(query.split())[:120]
    return QueryError(
        f"query failed: {one_line(err)} (query: {first_line})",
        backend_message=str(err),
        query=query,
    )


class ManagerBase:
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
