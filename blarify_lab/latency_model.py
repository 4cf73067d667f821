"""What a model's calls take, learnt from past sessions: seconds against tokens, and the usual
completion length.

Pure logic. Every documentation node stores what its call took (``latency_s``,
``prompt_tokens``, ``completion_tokens``, ``attempts``); ``fit_latency`` turns those of one
model into a ``LatencyModel``. The line is a Theil-Sen fit (the median of pairwise slopes, then
the median intercept), so a few stalled or retried calls do not tilt it; the completion length
is the median. With no measurement the model says so (``measured`` False) and falls back to
stated assumptions.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ASSUMED_COMPLETION_TOKENS",
    "ASSUMED_LATENCY_S",
    "LatencyModel",
    "Measurement",
    "fit_latency",
]

ASSUMED_COMPLETION_TOKENS = 150  # a description's length when nothing was measured
ASSUMED_LATENCY_S = 2.0  # one call's seconds when nothing was measured
MAX_PAIRS_POINTS = 400  # Theil-Sen over at most this many points (evenly spaced by tokens)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One stored call: its seconds and tokens."""

    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """``seconds = intercept_s + per_token_s * (prompt + completion tokens)``."""

    intercept_s: float = ASSUMED_LATENCY_S
    per_token_s: float = 0.0
    completion_tokens: int = ASSUMED_COMPLETION_TOKENS
    samples: int = 0

    @property
    def measured(self) -> bool:
        """True when fitted on past calls; False when these are the assumed defaults."""
        return self.samples > 0

    def seconds(self, prompt_tokens: int, completion_tokens: int | None = None) -> float:
        """The predicted seconds of one call (never negative)."""
        done = self.completion_tokens if completion_tokens is None else completion_tokens
        return max(0.0, self.intercept_s + self.per_token_s * (prompt_tokens + done))


def fit_latency(measurements: Sequence[Measurement]) -> LatencyModel:
    """A robust line of seconds against tokens, and the median completion length.

    Calls that needed retries are left out of the line (their seconds include failed
    attempts) unless nothing else is known.
    """
    usable = [m for m in measurements if m.latency_s >= 0 and m.prompt_tokens >= 0]
    if not usable:
        return LatencyModel()
    clean = [m for m in usable if m.attempts <= 1] or usable
    points = sorted((m.prompt_tokens + m.completion_tokens, m.latency_s) for m in clean)
    if len(points) > MAX_PAIRS_POINTS:
        step = len(points) / MAX_PAIRS_POINTS
        points = [points[int(i * step)] for i in range(MAX_PAIRS_POINTS)]
    xs = np.array([x for x, _ in points], dtype=np.float64)
    ys = np.array([y for _, y in points], dtype=np.float64)
    first, second = np.triu_indices(len(points), k=1)  # every pair once, as sorted
    dx = xs[second] - xs[first]
    apart = dx != 0
    slopes = (ys[second] - ys[first])[apart] / dx[apart]
    slope = max(0.0, float(np.median(slopes))) if slopes.size else 0.0
    intercept = statistics.median(y - slope * x for x, y in points)
    completion = round(statistics.median(m.completion_tokens for m in usable))
    return LatencyModel(
        intercept_s=max(0.0, intercept),
        per_token_s=slope,
        completion_tokens=max(1, completion),
        samples=len(usable),
    )
