"""Reports on a finished (or running) session: DataFrames, an HTML card and a timeline plot."""

from __future__ import annotations

import html
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .sessions import ProcessingSession

__all__ = ["plot_timeline", "session_html", "session_report", "session_summary"]

REPORT_COLUMNS = [
    "path",
    "labels",
    "depth",
    "status",
    "started_at",
    "finished_at",
    "duration_s",
    "worker",
    "error",
    "cycle",
]


def session_report(session: ProcessingSession) -> pd.DataFrame:
    """One row per node; times are seconds since the session started."""
    rows = [
        {
            "path": r.path,
            "labels": ",".join(r.labels),
            "depth": r.depth,
            "status": r.status,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "duration_s": (
                r.finished_at - r.started_at
                if r.started_at is not None and r.finished_at is not None
                else None
            ),
            "worker": r.worker,
            "error": r.error,
            "cycle": r.cycle,
        }
        for r in session.nodes.values()
    ]
    frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    frame["depth"] = frame["depth"].astype("Int64")
    for col in ("started_at", "finished_at", "duration_s"):
        frame[col] = frame[col].astype("float64")
    frame["cycle"] = frame["cycle"].astype(bool)
    return frame.sort_values(["finished_at", "path"], na_position="last").reset_index(drop=True)


def session_summary(session: ProcessingSession) -> pd.DataFrame:
    """A one-row frame: counts, wall time, throughput, node times and worker utilisation."""
    report = session_report(session)
    durations = report["duration_s"].dropna().to_numpy(dtype=float)
    wall = session.elapsed_s
    counts = session.counts
    finished = counts["completed"] + counts["failed"]
    busy = float(durations.sum())
    return pd.DataFrame(
        [
            {
                "session_id": session.session_id,
                "status": session.status,
                "nodes": session.total,
                "completed": counts["completed"],
                "failed": counts["failed"],
                "cycles": counts["cycles"],
                "wall_s": round(wall, 3),
                "nodes_per_s": round(finished / wall, 2) if wall > 0 else float("nan"),
                "mean_node_s": float(np.mean(durations)) if len(durations) else float("nan"),
                "p95_node_s": float(np.percentile(durations, 95))
                if len(durations)
                else float("nan"),
                "workers": session.max_workers,
                "utilisation": (
                    round(busy / (wall * session.max_workers), 3) if wall > 0 else float("nan")
                ),
            }
        ]
    ).set_index("session_id")


def session_html(session: ProcessingSession) -> str:
    """A small HTML card for Jupyter."""
    c = session.counts
    total = max(session.total, 1)
    colours = {"completed": "#2e7d32", "failed": "#c62828", "in_progress": "#f9a825"}
    bar = "".join(
        f'<div style="width:{100 * c[k] / total:.2f}%;background:{v}"></div>'
        for k, v in colours.items()
    )
    errors = "".join(
        f"<li><code>{html.escape(p)}</code>: {html.escape(e)}</li>"
        for p, e in deque(session.recent_errors, maxlen=5)
    )
    return (
        '<div style="font-family:sans-serif;border:1px solid #ccc;border-radius:6px;'
        'padding:8px;max-width:640px">'
        f"<b>Session</b> <code>{session.session_id}</code> "
        f"<b>{html.escape(session.status)}</b> "
        f"root <code>{html.escape(session.root_path)}</code><br>"
        f"{c['completed']} completed, {c['failed']} failed, {c['pending']} pending, "
        f"{c['in_progress']} in progress of {session.total}; {c['cycles']} cycle breaks; "
        f"{session.elapsed_s:.1f} s"
        '<div style="display:flex;height:10px;background:#eee;margin-top:4px">'
        f"{bar}</div>" + (f"<ul>{errors}</ul>" if errors else "") + "</div>"
    )


def plot_timeline(session: ProcessingSession) -> Figure:
    """Busy workers over time, and completions per second."""
    from matplotlib.figure import Figure

    report = session_report(session).dropna(subset=["started_at", "finished_at"])
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    busy_ax, rate_ax = fig.subplots(2, 1, sharex=True)
    if len(report):
        events = sorted(
            [(t, 1) for t in report["started_at"]] + [(t, -1) for t in report["finished_at"]]
        )
        times, level, xs, ys = 0.0, 0, [0.0], [0]
        for t, d in events:
            xs.append(t)
            ys.append(level)
            level += d
            xs.append(t)
            ys.append(level)
            times = t
        busy_ax.plot(xs, ys, color="#1565c0")
        busy_ax.axhline(session.max_workers, color="#999", linestyle="--", linewidth=1)
        width = max(times / 50, 0.05)
        bins = np.arange(0, times + width, width)
        hist, edges = np.histogram(report["finished_at"], bins=bins)
        rate_ax.bar(edges[:-1], hist / width, width=width, align="edge", color="#2e7d32")
    busy_ax.set_ylabel("busy workers")
    busy_ax.set_title(f"session {session.session_id[:8]} ({session.status})")
    rate_ax.set_ylabel("nodes / s")
    rate_ax.set_xlabel("seconds since start")
    return fig
