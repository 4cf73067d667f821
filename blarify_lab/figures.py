"""The session timeline as a matplotlib figure that shows itself in Jupyter (needs matplotlib)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .reports import SessionView, session_report

__all__ = ["TimelineFigure", "plot_timeline"]


class TimelineFigure(Figure):
    """A matplotlib figure that displays itself in Jupyter (a PNG), with no ``%matplotlib``."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()

    def __repr__(self) -> str:
        return f"<TimelineFigure: {self.get_suptitle() or self.axes[0].get_title()}>"


def plot_timeline(session: SessionView) -> TimelineFigure:
    """Busy workers over time, and completions per second."""
    report = session_report(session).dropna(subset=["started_at", "finished_at"])
    base = pd.Timestamp(session.started_at)
    for col in ("started_at", "finished_at"):  # seconds since the session started
        report[col] = (report[col] - base).dt.total_seconds()
    fig = TimelineFigure(figsize=(8, 4.5), layout="constrained")
    busy_ax, rate_ax = fig.subplots(2, 1, sharex=True)
    if len(report):
        events = sorted(
            [(t, 1) for t in report["started_at"]] + [(t, -1) for t in report["finished_at"]]
        )
        end, level, xs, ys = 0.0, 0, [0.0], [0]
        for t, d in events:
            xs.append(t)
            ys.append(level)
            level += d
            xs.append(t)
            ys.append(level)
            end = t
        busy_ax.plot(xs, ys, color="#1565c0")
        busy_ax.axhline(session.max_workers, color="#999", linestyle="--", linewidth=1)
        width = max(end / 50, 0.05)
        bins = np.arange(0, end + width, width)
        hist, edges = np.histogram(report["finished_at"], bins=bins)
        rate_ax.bar(edges[:-1], hist / width, width=width, align="edge", color="#2e7d32")
    busy_ax.set_ylabel("busy workers")
    busy_ax.set_title(f"session {session.session_id[:8]} ({session.status})")
    rate_ax.set_ylabel("nodes / s")
    rate_ax.set_xlabel("seconds since start")
    return fig
