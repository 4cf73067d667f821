"""Progress of a running session: a tqdm bar (a widget in Jupyter, text elsewhere) or a callback.

The processor only calls ``start``/``update``/``close`` (as a context manager); how progress is
shown is decided here. In Jupyter the widget bar is displayed together with an HTML and a
text form of the session, and both are replaced by the final state when the bar closes, so a
notebook read without a kernel (GitHub, nbviewer, an HTML export) still shows the outcome.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from .reports import session_html, session_text, snapshot
from .session import ProcessingSession

__all__ = ["ProgressCallback", "SessionProgress"]

log = logging.getLogger("blarify_lab")

ProgressCallback = Callable[[ProcessingSession], Any]
"""Called with the session after every batch of finished nodes (from the scheduler thread)."""


class SessionProgress:
    """Shows a session's progress: ``True`` a tqdm bar, ``False`` nothing, a callable is called.

    Use as a context manager: leaving it closes the bar. An error from closing (a callback
    that raises) is raised only when nothing else is; else it is logged and noted on the
    error in flight, which stays the one raised.
    """

    def __init__(
        self, session: ProcessingSession, mode: bool | ProgressCallback, min_interval: float = 0.1
    ) -> None:
        self._session = session
        self._callback: ProgressCallback | None = mode if callable(mode) else None
        self._show_bar = mode is True
        self._bar: Any = None
        self._display: Any = None  # the Jupyter display handle of the widget bar
        self._min_interval = min_interval
        self._last_postfix = 0.0
        self.eta: Callable[[], float | None] | None = None  # seconds left, from the scheduler

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except BaseException as err:  # the first error wins; this one is kept as a note
            log.error("closing the progress display failed: %s: %s", type(err).__name__, err)
            exc.add_note(f"closing the progress display also failed: {type(err).__name__}: {err}")

    def start(self) -> None:
        if self._show_bar:
            self._open_bar()
        self._notify()

    def _open_bar(self) -> None:
        from tqdm.auto import tqdm
        from tqdm.notebook import tqdm as notebook_tqdm

        options: dict[str, Any] = {
            "total": self._session.total,
            "desc": f"session {self._session.session_id[:8]}",
            "unit": "node",
            "leave": True,
            # the ETA is the scheduler's (``eta``), not tqdm's rate-based one
            "bar_format": "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
        }
        if issubclass(tqdm, notebook_tqdm):  # Jupyter: show it ourselves, with a fallback
            self._bar = tqdm(**options, display=False)
            from IPython.display import display

            self._display = display(self._bundle(), raw=True, display_id=True)
        else:
            self._bar = tqdm(**options, file=sys.stderr, dynamic_ncols=True)

    def _bundle(self, *, live: bool = True) -> dict[str, Any]:
        """The session's HTML and text forms, with the widget's view beside them while ``live``.

        The final state is stored without the widget: a notebook read without a kernel (an HTML
        export, a documentation site) then shows the session's end, not a blank widget."""
        widget = getattr(self._bar, "container", None) if live else None
        bundle: dict[str, Any] = {}
        if widget is not None:
            bundle.update(widget._repr_mimebundle_() or {})
        snap = snapshot(self._session)
        bundle["text/html"] = session_html(snap)
        bundle["text/plain"] = session_text(snap)
        return bundle

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
        s = self._session
        postfix: dict[str, object] = {}
        left = self.eta() if self.eta is not None and not s.done else None
        if left is not None:
            postfix["eta"] = f"{left:.0f}s" if left >= 10 else f"{left:.1f}s"
        postfix |= {
            "running": c["running"],
            "cached": s.cached,
            "failed": c["failed"],
            "cycles": c["cycles"],
        }
        if s.llm_calls:
            postfix["tokens"] = s.prompt_tokens + s.completion_tokens
        if s.cost_usd is not None:
            postfix["cost"] = f"${s.cost_usd:.4f}"
        if s.retries:
            postfix["retries"] = s.retries
        grounded = s.grounded_ratio
        if grounded is not None:
            postfix["grounded"] = f"{grounded:.0%}"
        if s.rate_wait_s >= 0.05:
            postfix["waited"] = f"{s.rate_wait_s:.1f}s"
        self._bar.set_postfix(postfix, refresh=False)

    def _notify(self) -> None:
        if self._callback is not None:
            self._callback(self._session)

    def close(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            try:
                self._bar = bar
                self._set_postfix()
                if self._session.status != "completed":
                    bar.set_description_str(
                        f"session {self._session.session_id[:8]} {self._session.status}"
                    )
                bar.close()
                if self._display is not None:
                    self._display.update(self._bundle(live=False), raw=True)
            finally:
                self._bar = None
                self._display = None
        self._notify()
