"""The few Redis-protocol exchanges made without a client: PING, SHUTDOWN, a free loopback port."""

from __future__ import annotations

import contextlib
import socket

__all__ = ["HOST", "answers_ping", "free_port", "send_shutdown"]

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
