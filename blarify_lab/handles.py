"""Sessions that run in the background: start one, watch it, wait for it, or stop it."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

from .progress import ProgressCallback
from .sessions import ProcessingSession

if TYPE_CHECKING:
    from .dashboard import SessionDashboard
    from .processor import RecursiveDFSProcessor

__all__ = ["SessionHandle"]

CANCEL_WAIT_S = 30.0


class SessionHandle:
    """A session running in a background thread (from ``RecursiveDFSProcessor.start``)."""

    def __init__(self, session: ProcessingSession) -> None:
        self.session = session
        self._result: Future[str] = Future()
        self._cancel = threading.Event()
        self._wake: Future[None] = Future()
        self._thread: threading.Thread | None = None

    @classmethod
    def _start(
        cls,
        processor: RecursiveDFSProcessor,
        session: ProcessingSession,
        *,
        progress: bool | ProgressCallback | None,
    ) -> SessionHandle:
        handle = cls(session)

        def run() -> None:
            if not handle._result.set_running_or_notify_cancel():
                return
            try:
                text = processor._execute(  # pyright: ignore[reportPrivateUsage]
                    session, progress=progress, cancel=handle._cancel, wake=handle._wake
                )
            except BaseException as err:
                handle._result.set_exception(err)
            else:
                handle._result.set_result(text)

        handle._thread = threading.Thread(
            target=run, name=f"blarify-session-{session.session_id[:8]}", daemon=True
        )
        handle._thread.start()
        return handle

    @property
    def session_id(self) -> str:
        return self.session.session_id

    def result(self, timeout: float | None = None) -> str:
        """The documentation of the session's root; re-raises what ended the session.

        Raises ``TimeoutError`` if ``timeout`` seconds pass first (the session goes on).
        """
        return self._result.result(timeout)

    def done(self) -> bool:
        """True once the session has ended and its state has been cleaned up."""
        return self._result.done()

    def cancel(self) -> bool:
        """Stop the session now, clean up its state, and mark it ``cancelled``.

        Returns False when the session had already ended. Calls stuck in the LLM are left to
        finish on their own; their results are dropped.
        """
        if self._result.done():
            return False
        self._cancel.set()
        if not self._wake.done():
            self._wake.set_result(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(CANCEL_WAIT_S)
        return True

    def dashboard(self) -> SessionDashboard:
        """A live ipywidgets dashboard of this session, with a Stop button."""
        from .dashboard import SessionDashboard

        return SessionDashboard(self)

    def __repr__(self) -> str:
        return f"<SessionHandle {self.session!r}>"

    def _repr_html_(self) -> str:
        return self.session._repr_html_()
