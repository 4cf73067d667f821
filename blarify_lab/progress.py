"""Progress of a running session: a tqdm bar (a widget in Jupyter, text elsewhere) or a callback."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sessions import ProcessingSession

__all__ = ["ProgressCallback", "SessionProgress"]

ProgressCallback = Callable[["ProcessingSession"], Any]
"""Called with the session after every batch of finished nodes (from the scheduler thread)."""


class SessionProgress:
    """Shows a session's progress: ``True`` a tqdm bar, ``False`` nothing, a callable is called."""

    def __init__(
        self, session: ProcessingSession, mode: bool | ProgressCallback, min_interval: float = 0.1
    ) -> None:
        self._session = session
        self._callback: ProgressCallback | None = mode if callable(mode) else None
        self._show_bar = mode is True
        self._bar: Any = None
        self._min_interval = min_interval
        self._last_postfix = 0.0

    def start(self) -> None:
        if self._show_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self._session.total,
                desc=f"session {self._session.session_id[:8]}",
                unit="node",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )
        self._notify()

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)
            now = time.monotonic()
            if now - self._last_postfix >= self._min_interval:
                self._last_postfix = now
                self._set_postfix()
        self._notify()

    def _set_postfix(self) -> None:
        c = self._session.counts
        self._bar.set_postfix(failed=c["failed"], cycles=c["cycles"], refresh=False)

    def _notify(self) -> None:
        if self._callback is not None:
            self._callback(self._session)

    def close(self) -> None:
        if self._bar is not None:
            self._set_postfix()
            if self._session.status != "completed":
                self._bar.set_description_str(
                    f"session {self._session.session_id[:8]} {self._session.status}"
                )
            self._bar.close()
            self._bar = None
        self._notify()
