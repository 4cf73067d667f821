"""Reports on a session: DataFrames, the one HTML card, and a one-line text form.

Everything here reads a session through ``SessionView`` (what ``ProcessingSession`` offers),
so this module imports nothing of the rest of the package. ``session_html`` is the only HTML
renderer: the session's card in Jupyter, the dashboard's static form and the fallback that a
notebook viewer without a kernel shows instead of the live widgets.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

__all__ = [
    "REPORT_COLUMNS",
    "STATE_COLOURS",
    "SessionView",
    "Snapshot",
    "format_duration",
    "session_html",
    "session_report",
    "session_summary",
    "session_text",
    "snapshot",
]

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
    "cached",
    "description",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "tokens_estimated",
    "cost_usd",
    "truncated",
    "ungrounded",
    "grounded_ratio",
]
STATE_COLOURS = {
    "pending": "#9e9e9e",
    "queued": "#90caf9",
    "running": "#f9a825",
    "completed": "#2e7d32",
    "failed": "#c62828",
}


class RecordView(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def depth(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def worker(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def cycle(self) -> bool: ...
    @property
    def cached(self) -> bool: ...
    @property
    def description(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def tokens_estimated(self) -> bool: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def ungrounded(self) -> tuple[str, ...] | None: ...
    @property
    def grounded_ratio(self) -> float | None: ...


class SessionView(Protocol):
    """What the reports read of a session."""

    @property
    def session_id(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def root_path(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def total(self) -> int: ...
    @property
    def max_workers(self) -> int: ...
    @property
    def counts(self) -> dict[str, int]: ...
    @property
    def elapsed_s(self) -> float: ...
    @property
    def nodes(self) -> Mapping[int, RecordView]: ...
    @property
    def recent_errors(self) -> Iterable[tuple[str, str]]: ...
    @property
    def scope(self) -> str: ...
    @property
    def schema(self) -> str: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def llm_calls(self) -> int: ...
    @property
    def cached(self) -> int: ...
    @property
    def outside_subtree(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def rate_wait_s(self) -> float: ...
    @property
    def grounded_ratio(self) -> float | None: ...


# ------------------------------------------------------------------------------ DataFrames


def session_report(session: SessionView) -> pd.DataFrame:
    """One row per node. ``started_at`` and ``finished_at`` are UTC timestamps (when a worker
    took the node, and when it was done with it); ``duration_s`` is the time between them."""
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
            "cached": r.cached,
            "description": r.description,
            "attempts": r.attempts,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "tokens_estimated": r.tokens_estimated,
            "cost_usd": r.cost_usd,
            "truncated": r.truncated,
            "ungrounded": None if r.ungrounded is None else list(r.ungrounded),
            "grounded_ratio": r.grounded_ratio,
        }
        for r in list(session.nodes.values())
    ]
    frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    frame["depth"] = frame["depth"].astype("Int64")
    base = pd.Timestamp(session.started_at)
    for col in ("started_at", "finished_at"):
        seconds = pd.Series(frame[col], dtype="float64")
        frame[col] = base + pd.to_timedelta(seconds, unit="s")
    frame["duration_s"] = frame["duration_s"].astype("float64")
    frame["cycle"] = frame["cycle"].astype(bool)
    frame["cached"] = frame["cached"].astype(bool)
    frame["tokens_estimated"] = frame["tokens_estimated"].astype(bool)
    frame["truncated"] = frame["truncated"].astype(bool)
    for col in ("attempts", "prompt_tokens", "completion_tokens"):
        frame[col] = frame[col].astype("int64")
    frame["cost_usd"] = frame["cost_usd"].astype("float64")
    frame["grounded_ratio"] = frame["grounded_ratio"].astype("float64")
    return frame.sort_values(["finished_at", "path"], na_position="last").reset_index(drop=True)


def session_summary(session: SessionView) -> pd.DataFrame:
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
                "llm_calls": session.llm_calls,
                "cached": session.cached,
                "retries": session.retries,
                "prompt_tokens": session.prompt_tokens,
                "completion_tokens": session.completion_tokens,
                "cost_usd": session.cost_usd if session.cost_usd is not None else float("nan"),
                "rate_wait_s": round(session.rate_wait_s, 3),
                "grounded_ratio": _or_nan(session.grounded_ratio),
                "scope": session.scope,
                "schema": session.schema,
                "tenant": session.tenant,
                "outside_subtree": session.outside_subtree,
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


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# ------------------------------------------------------------------------------------ HTML


@dataclass(frozen=True)
class Snapshot:
    """What a view of a session shows, read from it in one go."""

    session_id: str
    root_path: str
    state: str
    counts: dict[str, int]
    total: int
    elapsed_s: float
    throughput: float
    eta_s: float | None
    errors: tuple[tuple[str, str], ...]
    llm_calls: int = 0
    cached: int = 0
    tokens: int = 0
    cost_usd: float | None = None
    retries: int = 0
    rate_wait_s: float = 0.0
    grounded_ratio: float | None = None  # found / named over the descriptions so far


def snapshot(session: SessionView, max_errors: int = 5) -> Snapshot:
    counts = session.counts
    finished = counts["completed"] + counts["failed"]
    elapsed = session.elapsed_s
    rate = finished / elapsed if elapsed > 0 else 0.0
    remaining = max(session.total - finished, 0)
    eta = remaining / rate if rate > 0 and session.status == "running" else None
    return Snapshot(
        session_id=session.session_id,
        root_path=session.root_path,
        state=session.status,
        counts=counts,
        total=session.total,
        elapsed_s=elapsed,
        throughput=rate,
        eta_s=eta,
        errors=tuple(list(session.recent_errors)[-max_errors:]),
        llm_calls=session.llm_calls,
        cached=session.cached,
        tokens=session.prompt_tokens + session.completion_tokens,
        cost_usd=session.cost_usd,
        retries=session.retries,
        rate_wait_s=session.rate_wait_s,
        grounded_ratio=session.grounded_ratio,
    )


def format_duration(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def stats_line(snap: Snapshot) -> str:
    """Elapsed time, throughput, ETA, LLM calls, reused documentation and cycle breaks."""
    cost = "" if snap.cost_usd is None else f", ${snap.cost_usd:.4f}"
    waits = ""
    if snap.retries or snap.rate_wait_s >= 0.05:
        waits = f", {snap.retries} retries, {snap.rate_wait_s:.1f} s rate-limited"
    grounded = "" if snap.grounded_ratio is None else f", grounded {snap.grounded_ratio:.0%}"
    return (
        f"elapsed {format_duration(snap.elapsed_s)}, {snap.throughput:.1f} nodes/s, "
        f"ETA {format_duration(snap.eta_s)}, {snap.llm_calls} LLM calls, "
        f"{snap.cached} cached, {snap.tokens:,} tokens{cost}{waits}{grounded}, "
        f"cycles {snap.counts['cycles']}"
    )


def session_html(source: SessionView | Snapshot, *, stop_button: bool | None = None) -> str:
    """The session as static HTML (no JavaScript): a bar per node state, numbers, errors.

    ``stop_button`` adds the dashboard's Stop button (enabled when True, greyed when False).
    """
    snap = source if isinstance(source, Snapshot) else snapshot(source)
    total = max(snap.total, 1)
    rows = "".join(
        "<div style='display:flex;align-items:center;margin:2px 0'>"
        f"<span style='width:90px'>{state}</span>"
        "<div style='width:320px;height:12px;background:#eee;border-radius:3px'>"
        f"<div style='width:{100 * snap.counts.get(state, 0) / total:.1f}%;height:100%;"
        f"background:{colour};border-radius:3px'></div></div>"
        f"<span style='margin-left:8px' class='count-{state}'>"
        f"{snap.counts.get(state, 0)} / {snap.total}</span></div>"
        for state, colour in STATE_COLOURS.items()
    )
    errors = "".join(
        f"<div style='color:#c62828'><code>{html.escape(p)}</code>: {html.escape(e)}</div>"
        for p, e in snap.errors
    )
    button = ""
    if stop_button is not None:
        disabled = "" if stop_button else " disabled"
        button = (
            "<button class='stop' style='background:#d32f2f;color:white;border:none;"
            f"padding:6px 16px;margin-top:6px'{disabled}>&#9632; Stop</button>"
        )
    return (
        "<div class='blarify-session' style='font-family:sans-serif;font-size:14px;"
        "border:1px solid #ccc;border-radius:6px;padding:8px;width:560px'>"
        f"<div><b>Session</b> <code>{html.escape(snap.session_id)}</code> &nbsp; "
        f"<b class='state'>{html.escape(snap.state)}</b> &nbsp; root "
        f"<code>{html.escape(snap.root_path)}</code></div>{rows}"
        f"<div>{html.escape(stats_line(snap))}</div>{errors}{button}</div>"
    )


def session_text(source: SessionView | Snapshot) -> str:
    """The session on one line of plain text."""
    snap = source if isinstance(source, Snapshot) else snapshot(source)
    c = snap.counts
    return (
        f"session {snap.session_id} {snap.state}: {c['completed']} completed, "
        f"{c['failed']} failed, {c.get('running', 0)} running, {c.get('queued', 0)} queued, "
        f"{c['pending']} pending of {snap.total}; {stats_line(snap)}"
    )
