"""One deadline for a whole HTTP attempt, however slowly the server answers.

::

    bound_attempts(http_client)          # once, on the client's connection pools
    with attempt_deadline(2.0):          # then every socket wait inside ends by then
        client.post(...)

An HTTP client's timeout bounds each read, not the attempt: a server that trickles one byte
at a time keeps a call going for as long as it likes. ``bound_attempts`` wraps the network
backend of an ``httpx`` client's connection pools (``httpcore``'s ``NetworkBackend``, found
by duck typing, so that neither is imported here) so that every connect, read and write waits
at most until the deadline of the ``attempt_deadline`` block around it, on this thread; past
it the socket times out as it would with its own timeout (``httpcore.ReadTimeout`` ...,
which the ``openai`` client raises as ``APITimeoutError``). Outside such a block nothing
changes.

This module imports nothing from blarify_lab.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["attempt_deadline", "bound_attempts"]

_MIN_WAIT_S = 1e-3  # past the deadline a socket wait still needs a timeout > 0 to time out
_local = threading.local()


@contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Every socket wait of a wrapped client on this thread ends ``seconds`` from now."""
    previous: float | None = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def _bounded(timeout: float | None) -> float | None:
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    remaining = max(deadline - time.monotonic(), _MIN_WAIT_S)
    return remaining if timeout is None else min(timeout, remaining)


class _Stream:
    """A network stream whose reads and writes end by the attempt's deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout=_bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout=_bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> _Stream:
        if "timeout" in kwargs:
            kwargs["timeout"] = _bounded(kwargs["timeout"])
        return _Stream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Backend:
    """A network backend whose connections and streams end by the attempt's deadline."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> _Stream:
        kwargs["timeout"] = _bounded(kwargs.get("timeout"))
        return _Stream(self._inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _Stream:
        kwargs["timeout"] = _bounded(kwargs.get("timeout"))
        return _Stream(self._inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def bound_attempts(http_client: Any) -> bool:
    """Wrap the network backend of every connection pool of ``http_client`` (an
    ``httpx.Client``: its transport and its mounts); True when at least one was wrapped."""
    transports = [getattr(http_client, "_transport", None)]
    mounts = getattr(http_client, "_mounts", None)
    if isinstance(mounts, dict):
        transports.extend(mounts.values())  # pyright: ignore[reportUnknownMemberType,reportUnknownArgumentType]
    wrapped = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            continue
        if not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)  # pyright: ignore[reportOptionalMemberAccess]
        wrapped = True
    return wrapped
