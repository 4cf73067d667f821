"""A session running in the background: watch it, wait for it, or stop it.

``RecursiveDFSProcessor.start`` owns the thread that runs the session; the handle gets the
future of its result, the event that cancels it and a ``wake`` callable that nudges the
scheduler out of a wait, so that a cancel takes effect at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from .reports import session_html
from .session import ProcessingSession

if TYPE_CHECKING:
    from .dashboard import SessionDashboard

__all__ = ["SessionHandle"]

log = logging.getLogger("blarify_lab")

CANCEL_WAIT_S = 30.0


class SessionHandle:
    """A session running in a background thread (from ``RecursiveDFSProcessor.start``)."""

    def __init__(
        self,
        session: ProcessingSession,
        future: Future[str],
        cancel_event: threading.Event,
        wake: Callable[[], None],
    ) -> None:
        self.session = session
        self._cancel = cancel_event
        self._wake = wake
        self._lock = threading.Lock()
        self._hooks: list[Callable[[SessionHandle], object]] | None = []
        self._result_hooks: list[Callable[[], object]] = []
        # The session's own future settles this one once every done-callback has run, so
        # that what the callbacks show (a dashboard's last state) is there when result() is.
        self._future: Future[str] = Future()
        future.add_done_callback(self._settle)

    def _settle(self, inner: Future[str]) -> None:
        with self._lock:
            hooks, self._hooks = self._hooks or [], None
        for hook in hooks:
            try:
                hook(self)
            except Exception:  # a display callback must not hide the session's outcome
                log.exception("a done-callback of session %s failed", self.session_id)
        err = inner.exception()
        if err is None:
            self._future.set_result(inner.result())
        else:
            self._future.set_exception(err)

    @property
    def session_id(self) -> str:
        return self.session.session_id

    def result(self, timeout: float | None = None) -> str:
        """The documentation of the session's root; re-raises what ended the session.

        Raises ``TimeoutError`` if ``timeout`` seconds pass first (the session goes on).
        """
        try:
            return self._future.result(timeout)
        finally:
            if self._future.done():
                self._run_result_hooks()

    def on_result(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` in the thread that calls ``result()``, each time it returns or raises
        because the session is over. A display refreshed from there reaches the notebook cell
        that waits (a background thread's output may arrive after its own cell has ended)."""
        with self._lock:
            self._result_hooks.append(fn)

    def _run_result_hooks(self) -> None:
        with self._lock:
            hooks = list(self._result_hooks)
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("a result hook of session %s failed", self.session_id)

    def done(self) -> bool:
        """True once the session has ended and its state has been cleaned up."""
        return self._future.done()

    def add_done_callback(self, fn: Callable[[SessionHandle], object]) -> None:
        """Call ``fn(handle)`` once the session has ended and cleaned up, before ``result()``
        returns (at once if it has ended)."""
        with self._lock:
            if self._hooks is not None:
                self._hooks.append(fn)
                return
        fn(self)

    def cancel(self) -> bool:
        """Stop the session now, clean up its state, and mark it ``cancelled``.

        Returns False when the session had already ended. Calls stuck in the LLM are left to
        finish on their own; their results are dropped. Waits (up to 30 s) for the cleanup.
        """
        if self._future.done():
            return False
        self._cancel.set()
        self._wake()
        with contextlib.suppress(TimeoutError):
            self._future.exception(CANCEL_WAIT_S)
        return True

    def dashboard(self) -> SessionDashboard:
        """A live ipywidgets dashboard of this session, with a Stop button."""
        from .dashboard import SessionDashboard

        return SessionDashboard(self)

    def __repr__(self) -> str:
        return f"<SessionHandle {self.session!r}>"

    def _repr_html_(self) -> str:
        return session_html(self.session)
