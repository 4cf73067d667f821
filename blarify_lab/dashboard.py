"""A live Jupyter dashboard of one session (ipywidgets), with a Stop button.

Widgets only: what it shows comes from ``reports.snapshot`` and its static form from
``reports.session_html``. It reads the session object (never the database) and redraws from
its own thread at most ``1 / refresh_interval`` times a second, whatever the node rate. Its
Jupyter output carries the HTML and text forms too, replaced by the final state when the
session ends, so a notebook viewed without a kernel shows the outcome, not a blank widget.
"""

from __future__ import annotations

import html
import threading
from typing import Any, Protocol

import ipywidgets as widgets

from .reports import STATE_COLOURS, Snapshot, session_html, session_text, snapshot, stats_line
from .session import ProcessingSession

__all__ = ["SessionDashboard"]


class Stoppable(Protocol):
    """What the dashboard needs of a running session's handle (``SessionHandle``)."""

    @property
    def session(self) -> ProcessingSession: ...

    def cancel(self) -> bool: ...

    def add_done_callback(self, fn: Any, /) -> None: ...


class SessionDashboard:
    """Session id, state, a bar per node state, elapsed time, throughput, ETA, errors, Stop.

    Pass a ``SessionHandle`` (from ``processor.start``) to get a working Stop button, or a
    ``ProcessingSession`` to look at a finished run.
    """

    def __init__(
        self,
        source: Stoppable | ProcessingSession,
        *,
        refresh_interval: float = 0.25,
        max_errors: int = 5,
    ) -> None:
        if isinstance(source, ProcessingSession):
            self.handle: Stoppable | None = None
            self.session = source
        elif isinstance(getattr(source, "session", None), ProcessingSession) and callable(
            getattr(source, "cancel", None)
        ):
            self.handle = source
            self.session = source.session
        else:
            raise TypeError(
                f"SessionDashboard takes a SessionHandle or a ProcessingSession, "
                f"not {type(source).__name__}"
            )
        if not refresh_interval > 0:
            raise ValueError(f"refresh_interval must be > 0, got {refresh_interval}")
        self.refresh_interval = refresh_interval
        self.max_errors = max_errors
        self.updates = 0  # how many times the widgets were redrawn (tests read this)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopping = False  # Stop was clicked: the button stays disabled
        self._display: Any = None  # the Jupyter display handle, once shown

        self._title = widgets.HTML()
        self._bars: dict[str, widgets.IntProgress] = {}
        self._numbers: dict[str, widgets.HTML] = {}
        rows: list[widgets.Widget] = []
        for state, colour in STATE_COLOURS.items():
            bar = widgets.IntProgress(
                min=0,
                max=1,
                value=0,
                layout=widgets.Layout(width="320px"),
                style={"bar_color": colour},
            )
            label = widgets.HTML(f"<span style='display:inline-block;width:90px'>{state}</span>")
            number = widgets.HTML()
            self._bars[state], self._numbers[state] = bar, number
            rows.append(widgets.HBox([label, bar, number]))
        self._stats = widgets.HTML()
        self._errors = widgets.HTML()
        self.stop_button = widgets.Button(
            description="Stop", button_style="danger", tooltip="cancel the session"
        )
        self.stop_button.on_click(self._on_stop)
        self.widget = widgets.VBox(
            [self._title, *rows, self._stats, self._errors, self.stop_button],
            layout=widgets.Layout(border="1px solid #ccc", padding="8px", width="560px"),
        )
        self.refresh()
        self._thread: threading.Thread | None = None
        if not self.session.done:
            self._thread = threading.Thread(
                target=self._run,
                name=f"blarify-dashboard-{self.session.session_id[:8]}",
                daemon=True,
            )
            self._thread.start()
            if self.handle is not None:  # the last redraw lands before result() returns
                self.handle.add_done_callback(lambda _: self._final())
                on_result = getattr(self.handle, "on_result", None)
                if callable(on_result):  # and again from the thread (the cell) that waits
                    on_result(self._store_final)

    # ---------------------------------------------------------------------------- updating
    def _run(self) -> None:
        """Redraw every ``refresh_interval`` seconds until the session ends or ``close()``."""
        while not self._stop.wait(self.refresh_interval):
            done = self.session.done  # read first, so that the last redraw shows the end
            self.refresh()
            if done:
                self._final()
                return

    def _final(self) -> None:
        """The session is over: redraw, and replace the stored output by the final state."""
        self.refresh()
        self._store_final()

    def _store_final(self) -> None:
        """Replace the stored output by the final state; again on each call, since an update
        sent from a thread whose notebook cell has ended may be lost."""
        with self._lock:
            shown = self._display
        if shown is not None:
            shown.update(self._repr_mimebundle_(), raw=True)

    def refresh(self) -> Snapshot:
        """Redraw from the session now; safe from any thread."""
        snap = snapshot(self.session, self.max_errors)
        with self._lock:
            sid = html.escape(snap.session_id)
            self._title.value = (
                f"<b>Session</b> <code>{sid}</code> &nbsp; <b>{html.escape(snap.state)}</b>"
            )
            for state, bar in self._bars.items():
                bar.max = max(snap.total, 1)
                bar.value = snap.counts[state]
                self._numbers[state].value = f"&nbsp;{snap.counts[state]} / {snap.total}"
            self._stats.value = html.escape(stats_line(snap))
            self._errors.value = "".join(
                f"<div style='color:#c62828'><code>{html.escape(p)}</code>: {html.escape(e)}</div>"
                for p, e in snap.errors
            )
            if self._stopping and snap.state != "running":
                self.stop_button.description = (
                    "Stopped" if snap.state == "cancelled" else "Finished"
                )
            self.stop_button.disabled = (
                self.handle is None or self._stopping or snap.state != "running"
            )
            self.updates += 1
        return snap

    def _on_stop(self, _button: Any = None) -> None:
        """The Stop button: cancel the session without blocking the kernel."""
        handle = self.handle
        with self._lock:
            if handle is None or self._stopping:
                return
            self._stopping = True
            self.stop_button.disabled = True
            self.stop_button.description = "Stopping…"

        def cancel() -> None:  # off the kernel's message thread: cancel() waits for cleanup
            handle.cancel()
            self.refresh()

        threading.Thread(target=cancel, name="blarify-dashboard-stop", daemon=True).start()

    def close(self) -> None:
        """Stop refreshing and close the widgets."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.refresh_interval * 4)
        self.widget.close()

    # ----------------------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget's view, with the session's HTML and one-line text as fallbacks; once the
        session is over, only those two (the stored output then needs no JavaScript)."""
        bundle: dict[str, Any] = {}
        if not self.session.done:
            bundle.update(self.widget._repr_mimebundle_(**kwargs) or {})  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue, reportUnknownArgumentType]
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = repr(self)
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        handle = display(self._repr_mimebundle_(), raw=True, display_id=True)
        with self._lock:
            self._display = handle  # the last redraw (``_final``) replaces it
            if handle is not None and self.session.done:  # it ended while being shown: store it now
                handle.update(self._repr_mimebundle_(), raw=True)

    def to_html(self) -> str:
        """The dashboard as static HTML: the same content, no JavaScript needed."""
        snap = snapshot(self.session, self.max_errors)
        running = self.handle is not None and snap.state == "running" and not self._stopping
        return session_html(snap, stop_button=running)

    def __repr__(self) -> str:
        return f"<SessionDashboard {session_text(snapshot(self.session, self.max_errors))}>"
