"""The latency and length model and the schedule simulation, without a database."""

from __future__ import annotations

import math

from blarify_lab.graph import DependencyGraph
from blarify_lab.latency_model import (
    ASSUMED_COMPLETION_TOKENS,
    LatencyModel,
    Measurement,
    fit_latency,
)
from blarify_lab.simulate import remaining_s, simulate_wall


def test_a_robust_line_ignores_a_few_stalled_calls() -> None:
    calls = [Measurement(0.3 + 0.002 * t, t - 50, 50) for t in range(100, 1100, 10)]
    calls += [Measurement(30.0, 400, 50), Measurement(45.0, 900, 50)]  # two stalls
    calls += [Measurement(99.0, 500, 50, attempts=3)]  # a retried call: not on the line
    model = fit_latency(calls)
    assert model.measured and model.samples == len(calls)
    assert math.isclose(model.per_token_s, 0.002, rel_tol=1e-6)
    assert math.isclose(model.intercept_s, 0.3, rel_tol=1e-6)
    assert model.completion_tokens == 50
    assert math.isclose(model.seconds(450), 0.3 + 0.002 * 500)


def test_no_measurement_means_assumed_figures() -> None:
    model = fit_latency([])
    assert model == LatencyModel() and not model.measured
    assert model.completion_tokens == ASSUMED_COMPLETION_TOKENS


def test_constant_latency_fits_a_flat_line() -> None:
    model = fit_latency([Measurement(0.02, 100 + i, 7) for i in range(50)])
    assert model.per_token_s == 0.0 and math.isclose(model.intercept_s, 0.02)


def _cut(edges: list[tuple[int, list[int]]]) -> DependencyGraph:
    g = DependencyGraph(edges)
    g.break_cycles()
    return g


def test_simulated_wall_of_a_chain_a_fan_and_a_rate_limit() -> None:
    chain = _cut([(i, [i + 1]) for i in range(9)])
    secs = dict.fromkeys(range(10), 1.0)
    assert simulate_wall(chain.parents, chain.unfinished, secs, 8) == 10.0
    fan = _cut([(0, list(range(1, 9)))])
    secs = dict.fromkeys(range(9), 1.0)
    assert simulate_wall(fan.parents, fan.unfinished, secs, 4) == 3.0
    # 60 requests per minute: one start per second, whatever the workers
    paced = simulate_wall(fan.parents, fan.unfinished, secs, 8, requests_per_minute=60)
    assert paced == 9.0
    # reused documentation takes no call time
    assert simulate_wall(fan.parents, fan.unfinished, {}, 4) == 0.0


def test_critical_path_first_beats_arrival_order_in_the_simulation() -> None:
    # root 0 waits for leaves 1..4 and for the chain 5 -> 6 -> 7 -> 8 (ids: leaves first)
    g = _cut([(0, [1, 2, 3, 4, 5]), (5, [6]), (6, [7]), (7, [8])])
    secs = dict.fromkeys(range(9), 1.0)
    fast = simulate_wall(g.parents, g.unfinished, secs, 2)
    slow = simulate_wall(g.parents, g.unfinished, secs, 2, by_priority=False)
    assert (fast, slow) == (5.0, 7.0)


def test_time_left_is_the_larger_of_work_and_chain() -> None:
    assert remaining_s(100, 0.5, 10, 3) == 5.0
    assert remaining_s(10, 0.5, 10, 8) == 4.0
    assert remaining_s(10, None, 10, 8) is None
