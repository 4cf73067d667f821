"""A live Jupyter dashboard of one session (ipywidgets), with a Stop button.

It reads the session object only (never the database), refreshes from its own thread at most
``1 / refresh_interval`` times a second whatever the node rate, and renders itself as static
HTML too (``to_html``) for terminals, reports and screenshots.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from .handles import SessionHandle
from .sessions import ProcessingSession

__all__ = ["SessionDashboard"]

STATUS_COLOURS = {
    "pending": "#9e9e9e",
    "in_progress": "#f9a825",
    "completed": "#2e7d32",
    "failed": "#c62828",
}
STATUS_LABELS = {
    "pending": "pending",
    "in_progress": "in progress",
    "completed": "completed",
    "failed": "failed",
}


@dataclass(frozen=True)
class Snapshot:
    """What the dashboard shows, computed from the session in one go."""

    session_id: str
    state: str
    counts: dict[str, int]
    total: int
    elapsed_s: float
    throughput: float
    eta_s: float | None
    errors: tuple[tuple[str, str], ...]


def snapshot(session: ProcessingSession, max_errors: int = 5) -> Snapshot:
    counts = session.counts
    finished = counts["completed"] + counts["failed"]
    elapsed = session.elapsed_s
    rate = finished / elapsed if elapsed > 0 else 0.0
    remaining = max(session.total - finished, 0)
    eta = remaining / rate if rate > 0 and session.status == "running" else None
    return Snapshot(
        session_id=session.session_id,
        state=session.status,
        counts=counts,
        total=session.total,
        elapsed_s=elapsed,
        throughput=rate,
        eta_s=eta,
        errors=tuple(list(session.recent_errors)[-max_errors:]),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class SessionDashboard:
    """Session id, state, a bar per status, elapsed time, throughput, ETA, latest errors, Stop.

    Pass a ``SessionHandle`` (from ``processor.start``) to get a working Stop button, or a
    ``ProcessingSession`` to look at a finished run.
    """

    def __init__(
        self,
        source: SessionHandle | ProcessingSession,
        *,
        refresh_interval: float = 0.25,
        max_errors: int = 5,
    ) -> None:
        if isinstance(source, SessionHandle):
            self.handle: SessionHandle | None = source
            self.session = source.session
        elif isinstance(source, ProcessingSession):
            self.handle = None
            self.session = source
        else:
            raise TypeError(
                f"SessionDashboard takes a SessionHandle or a ProcessingSession, "
                f"not {type(source).__name__}"
            )
        if refresh_interval <= 0:
            raise ValueError(f"refresh_interval must be > 0, got {refresh_interval}")
        self.refresh_interval = refresh_interval
        self.max_errors = max_errors
        self.updates = 0  # how many times the widgets were redrawn (tests read this)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopping = False  # Stop was clicked: the button stays disabled

        self._title = widgets.HTML()
        self._bars: dict[str, widgets.IntProgress] = {}
        self._numbers: dict[str, widgets.HTML] = {}
        rows: list[widgets.Widget] = []
        for status, colour in STATUS_COLOURS.items():
            bar = widgets.IntProgress(
                min=0,
                max=1,
                value=0,
                layout=widgets.Layout(width="320px"),
                style={"bar_color": colour},
            )
            label = widgets.HTML(
                f"<span style='display:inline-block;width:90px'>{STATUS_LABELS[status]}</span>"
            )
            number = widgets.HTML()
            self._bars[status], self._numbers[status] = bar, number
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

    # ---------------------------------------------------------------------------- updating
    def _run(self) -> None:
        """Redraw every ``refresh_interval`` seconds until the session ends or ``close()``."""
        while not self._stop.wait(self.refresh_interval):
            done = self.session.done  # read first, so that the last redraw shows the end
            self.refresh()
            if done:
                return

    def refresh(self) -> Snapshot:
        """Redraw from the session now; safe from any thread."""
        snap = snapshot(self.session, self.max_errors)
        with self._lock:
            sid = html.escape(snap.session_id)
            self._title.value = (
                f"<b>Session</b> <code>{sid}</code> &nbsp; <b>{html.escape(snap.state)}</b>"
            )
            for status, bar in self._bars.items():
                bar.max = max(snap.total, 1)
                bar.value = snap.counts[status]
                self._numbers[status].value = f"&nbsp;{snap.counts[status]} / {snap.total}"
            self._stats.value = (
                f"elapsed {_duration(snap.elapsed_s)} &nbsp; "
                f"{snap.throughput:.1f} nodes/s &nbsp; ETA {_duration(snap.eta_s)} &nbsp; "
                f"cycles {snap.counts['cycles']}"
            )
            self._errors.value = "".join(
                f"<div style='color:#c62828'><code>{html.escape(p)}</code>: {html.escape(e)}</div>"
                for p, e in snap.errors
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
            stopped = handle.cancel()
            with self._lock:
                self.stop_button.description = "Stopped" if stopped else "Finished"
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
        """The widget's view, and this dashboard's one-line summary as its plain text."""
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})  # pyright: ignore[reportUnknownMemberType, reportAttributeAccessIssue, reportUnknownArgumentType]
        bundle["text/plain"] = repr(self)
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def to_html(self) -> str:
        """The dashboard as static HTML: the same content, no JavaScript needed."""
        snap = snapshot(self.session, self.max_errors)
        total = max(snap.total, 1)
        rows = "".join(
            "<div style='display:flex;align-items:center;margin:3px 0'>"
            f"<span style='width:90px'>{STATUS_LABELS[s]}</span>"
            "<div style='width:320px;height:14px;background:#eee;border-radius:3px'>"
            f"<div style='width:{100 * snap.counts[s] / total:.1f}%;height:100%;"
            f"background:{c};border-radius:3px'></div></div>"
            f"<span style='margin-left:8px' class='count-{s}'>{snap.counts[s]} / {snap.total}</span>"
            "</div>"
            for s, c in STATUS_COLOURS.items()
        )
        errors = "".join(
            f"<div style='color:#c62828'><code>{html.escape(p)}</code>: {html.escape(e)}</div>"
            for p, e in snap.errors
        )
        disabled = "" if self.handle is not None and snap.state == "running" else " disabled"
        return (
            "<div class='blarify-dashboard' style='font-family:sans-serif;font-size:14px;"
            "border:1px solid #ccc;padding:8px;width:560px'>"
            f"<div><b>Session</b> <code>{html.escape(snap.session_id)}</code> &nbsp; "
            f"<b class='state'>{html.escape(snap.state)}</b></div>{rows}"
            f"<div>elapsed {_duration(snap.elapsed_s)} &nbsp; {snap.throughput:.1f} nodes/s "
            f"&nbsp; ETA {_duration(snap.eta_s)} &nbsp; cycles {snap.counts['cycles']}</div>"
            f"{errors}<button class='stop' style='background:#d32f2f;color:white;border:none;"
            f"padding:6px 16px;margin-top:6px'{disabled}>&#9632; Stop</button></div>"
        )

    def __repr__(self) -> str:
        snap = snapshot(self.session, self.max_errors)
        c = snap.counts
        return (
            f"<SessionDashboard {snap.session_id} {snap.state}: {c['completed']} completed, "
            f"{c['failed']} failed, {c['in_progress']} in progress, {c['pending']} pending of "
            f"{snap.total}; {snap.throughput:.1f} nodes/s, ETA {_duration(snap.eta_s)}>"
        )
