"""Rough edges a new user met: what the report, the timeline and the messages say."""

from __future__ import annotations

from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB

from .helpers import make_tree, slow_llm


def _peak_busy(starts: list[float], ends: list[float]) -> int:
    level = peak = 0
    for _, step in sorted([(t, 1) for t in starts] + [(t, -1) for t in ends]):
        level += step
        peak = max(peak, level)
    return peak


def test_the_timeline_never_shows_more_busy_workers_than_max_workers(db_manager: GraphDB) -> None:
    make_tree(db_manager, 12, 3)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.02), max_workers=4, progress=False)
    proc.process_node("/root")
    assert proc.last_session is not None
    report = proc.last_session.report().dropna(subset=["started_at", "finished_at"])
    assert len(report) == 49
    starts = [t.timestamp() for t in report["started_at"]]
    ends = [t.timestamp() for t in report["finished_at"]]
    assert _peak_busy(starts, ends) <= 4, "a node's time is the time a worker spent on it"
    assert bool((report["duration_s"] >= 0.02 * 0.9).all()), "each node includes its LLM call"
