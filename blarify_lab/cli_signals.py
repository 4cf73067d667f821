"""SIGTERM and SIGHUP in the command line: raised in the main thread like Ctrl-C, so that the
running session cleans up before the process exits with ``128 + signum``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["HANDLED_SIGNALS", "SignalInterrupt", "signals_interrupt"]


class SignalInterrupt(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that the running session
    cleans up; ``main()`` exits with ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


HANDLED_SIGNALS = tuple(
    sig for sig in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if sig
)


def _raise_signal(signum: int, frame: object) -> None:
    raise SignalInterrupt(signum)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``SignalInterrupt`` in the main thread while the command runs;
    the previous handlers come back afterwards. (Off the main thread nothing is installed.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, _raise_signal) for sig in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
