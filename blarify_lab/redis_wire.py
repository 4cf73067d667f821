"""The few Redis-protocol exchanges made without a client: PING, SHUTDOWN, a free loopback port,
and whether a starting server is ready or still loading its data (``server_status``)."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["HOST", "ServerStatus", "answers_ping", "free_port", "send_shutdown", "server_status"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on ``HOST`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def answers_ping(host: str, port: int, timeout: float = 1.0, password: str | None = None) -> bool:
    """True when a Redis-protocol server at host:port answers PING (after AUTH if a password)."""
    request = _resp("PING")
    expected = b"+PONG\r\n"
    if password is not None:
        request = _resp("AUTH", password) + request
        expected = b"+OK\r\n" + expected
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while len(data) < len(expected) and expected.startswith(data):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return data == expected
    except OSError:
        return False


def send_shutdown(port: int, password: str, timeout: float = 2.0) -> None:
    """Ask the server to stop (it flushes its append-only file first); errors are ignored."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection((HOST, port), timeout=timeout) as s,
    ):
        s.sendall(_resp("AUTH", password) + _resp("SHUTDOWN", "NOSAVE"))
        while s.recv(256):
            pass


@dataclass(frozen=True)
class ServerStatus:
    """What a server said: ``ready`` (PING answered), else ``loading`` its data with
    ``loaded_bytes`` and ``loaded_perc`` so far (``loading`` False and not ready: it refused)."""

    ready: bool
    loading: bool
    loaded_bytes: int = 0
    loaded_perc: float = 0.0


def _read_reply(f: BinaryIO) -> bytes:
    """One RESP reply from the file ``f``: a status/error line, or a bulk string's bytes."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("connection closed")
    if line[:1] != b"$":
        return line[:-2]
    length = int(line[1:-2])
    data = f.read(length + 2) if length >= 0 else b""
    return data[:length]


def server_status(host: str, port: int, password: str, timeout: float = 1.0) -> ServerStatus | None:
    """AUTH, PING and ``INFO persistence``: ready, loading (how far), or None (no answer)."""
    request = _resp("AUTH", password) + _resp("PING") + _resp("INFO", "persistence")
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request)
            f = s.makefile("rb")
            replies = [_read_reply(f) for _ in range(3)]
    except (OSError, ValueError):
        return None
    if replies[0] != b"+OK":
        return None
    if replies[1] == b"+PONG":
        return ServerStatus(ready=True, loading=False)
    info = dict(
        line.split(":", 1)
        for line in replies[2].decode("utf-8", "replace").splitlines()
        if ":" in line
    )
    if info.get("loading") != "1" and not replies[1].startswith(b"-LOADING"):
        return ServerStatus(ready=False, loading=False)
    try:
        loaded = int(info.get("loading_loaded_bytes", "0"))
        perc = float(info.get("loading_loaded_perc", "0"))
    except ValueError:
        loaded, perc = 0, 0.0
    return ServerStatus(ready=False, loading=True, loaded_bytes=loaded, loaded_perc=perc)
