"""What a model's past calls took, read from the graph (the fit itself is ``latency_model``)."""

from __future__ import annotations

from . import queries as q
from .db import GraphDB
from .latency_model import LatencyModel, Measurement, fit_latency

__all__ = ["MEASUREMENTS_KEPT", "load_latency_model"]

MEASUREMENTS_KEPT = 2000  # the newest calls of a model that the fit uses


def load_latency_model(db: GraphDB, model: str) -> LatencyModel:
    """What ``model``'s stored calls took, fitted (read only; assumed figures when none)."""
    rows = db.run_query(q.call_measurements_query(), {"model": model, "limit": MEASUREMENTS_KEPT})
    return fit_latency(
        [
            Measurement(float(r["s"]), int(r["p"] or 0), int(r["c"] or 0), int(r["a"] or 1))
            for r in rows
            if isinstance(r["s"], int | float)
        ]
    )
