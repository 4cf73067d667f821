"""RateLimiter: even spreading, token bucket, 429 backoff and recovery, deadline, cancel."""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest

from benchmarks.pacing import max_in_window
from blarify_lab.errors import SessionCancelled
from blarify_lab.pacing import PacingTimeout, RateLimiter


def run_threads(limiter: RateLimiter, threads: int, each: int, tokens: int = 0) -> list[float]:
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            limiter.acquire(tokens)
            with lock:
                starts.append(time.monotonic())

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    return sorted(starts)


def test_requests_are_spread_evenly_across_threads() -> None:
    rpm, threads, each = 600, 8, 4
    calls = threads * each
    limiter = RateLimiter(requests_per_minute=rpm)
    began = time.monotonic()
    starts = run_threads(limiter, threads, each)
    wall = time.monotonic() - began
    assert len(starts) == calls
    assert max_in_window(starts) <= rpm / 60 + 1  # never a burst
    ideal = calls / rpm * 60  # 3.2 s
    assert (calls - 1) * 60 / rpm * 0.97 <= wall <= 1.15 * ideal
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.1 * 0.5  # thread wake-up jitter, not bunching
    stats = limiter.stats()
    assert stats.acquired == calls and stats.rate_limited == 0
    # 32 starts over 3.1 s, each thread waiting for its turn: a lot of waiting in all
    assert limiter.waited_s > wall


def test_no_limits_means_no_wait() -> None:
    limiter = RateLimiter()
    began = time.monotonic()
    for _ in range(200):
        assert limiter.acquire(10_000) < 0.01
    assert time.monotonic() - began < 0.2
    assert limiter.effective_rpm is None


def test_tokens_per_minute_bucket() -> None:
    # 20,000 tokens/s, a bucket of half a second: two 4,000-token calls at once, then one per
    # 0.2 s
    limiter = RateLimiter(tokens_per_minute=1_200_000, burst_s=0.5)
    began = time.monotonic()
    offsets = []
    for _ in range(5):
        limiter.acquire(4_000)
        offsets.append(time.monotonic() - began)
    assert offsets[1] < 0.05
    assert offsets[2] == pytest.approx(0.1, abs=0.04)
    assert offsets[4] == pytest.approx(0.5, abs=0.06)


def test_a_request_larger_than_the_bucket_is_admitted_and_its_debt_delays_the_next() -> None:
    # 20,000 tokens/s, a bucket of 10,000 tokens
    limiter = RateLimiter(tokens_per_minute=1_200_000, burst_s=0.5)
    began = time.monotonic()
    limiter.acquire(5_000)  # bucket 5,000
    limiter.acquire(15_000)  # waits until the bucket is full (0.25 s), leaves it at -5,000
    oversize_at = time.monotonic() - began
    limiter.acquire(1_000)  # waits until it holds 1,000 again (0.3 s)
    assert oversize_at == pytest.approx(0.25, abs=0.04)
    assert time.monotonic() - began == pytest.approx(0.55, abs=0.06)


def test_charge_takes_tokens_learnt_after_the_call() -> None:
    limiter = RateLimiter(tokens_per_minute=1_200_000, burst_s=0.5)  # 20,000/s, 10,000 at most
    limiter.acquire(5_000)
    limiter.charge(5_000)  # the completion's tokens: the bucket is now empty
    began = time.monotonic()
    limiter.acquire(2_000)
    assert time.monotonic() - began == pytest.approx(0.1, abs=0.04)


def test_a_429_pauses_and_halves_then_successes_restore_the_rate() -> None:
    limiter = RateLimiter(requests_per_minute=600, recovery_step=0.1)
    limiter.acquire()
    limiter.on_rate_limited(0.3)
    assert limiter.effective_rpm == pytest.approx(300)
    limiter.on_rate_limited(0.3)  # the same burst: once per cooldown, no second halving
    assert limiter.effective_rpm == pytest.approx(300)
    began = time.monotonic()
    limiter.acquire()
    first = time.monotonic() - began
    limiter.acquire()
    second = time.monotonic() - began
    assert first >= 0.29  # the pause (from the 429) is honoured
    assert second - first == pytest.approx(0.2, abs=0.04)  # at half the rate
    for _ in range(4):
        limiter.on_success()
    assert limiter.effective_rpm == pytest.approx(540)
    for _ in range(10):
        limiter.on_success()
    assert limiter.effective_rpm == pytest.approx(600)  # back to the configured rate, no more
    stats = limiter.stats()
    assert stats.rate_limited == 2 and stats.factor == 1.0


def test_repeated_429s_never_drop_below_the_floor() -> None:
    limiter = RateLimiter(requests_per_minute=600, backoff_cooldown_s=0.0, min_factor=1 / 8)
    for _ in range(10):
        limiter.on_rate_limited(0.0)
    assert limiter.effective_rpm == pytest.approx(600 / 8)


def test_a_429_reschedules_every_waiting_thread_behind_the_pause() -> None:
    limiter = RateLimiter(requests_per_minute=600)
    threads = 5
    hit_at: list[float] = []
    timer = threading.Timer(
        0.05, lambda: (hit_at.append(time.monotonic()), limiter.on_rate_limited(0.3))
    )
    timer.start()
    starts = run_threads(limiter, threads, 1)
    timer.join()
    after = [t for t in starts if t > hit_at[0]]
    assert len(after) == threads - 1  # only the first had started
    assert min(after) >= hit_at[0] + 0.3 - 0.01
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert min(gaps) >= 0.2 * 0.8  # spread at half the rate, not released at once


def test_a_429_on_an_unlimited_session_pauses_everyone_and_caps_the_rate() -> None:
    limiter = RateLimiter(recovery_step=0.25)
    for _ in range(20):
        limiter.acquire()
    limiter.on_rate_limited(0.2)
    capped = limiter.effective_rpm
    assert capped is not None and math.isfinite(capped)
    began = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - began >= 0.19
    limiter.on_rate_limited(None)  # no Retry-After: the default pause
    assert limiter.stats().paused_until >= time.monotonic() + 0.9
    for _ in range(2):
        limiter.on_success()
    assert limiter.effective_rpm is None  # recovered: the cap is lifted


def test_a_slot_past_the_deadline_raises_at_once() -> None:
    limiter = RateLimiter(requests_per_minute=120)  # one start per 0.5 s
    limiter.acquire()
    began = time.monotonic()
    with pytest.raises(PacingTimeout, match="after its deadline"):
        limiter.acquire(deadline=began + 0.2)
    assert time.monotonic() - began < 0.05
    assert isinstance(PacingTimeout("x"), TimeoutError)
    # the refused request took no slot: the next one is still due 0.5 s after the first (had
    # it taken one, the next would wait a whole second more)
    waited = limiter.acquire(deadline=began + 2.0)
    assert 0.4 <= waited < 0.85, waited


def test_cancel_interrupts_a_wait() -> None:
    cancel = threading.Event()
    limiter = RateLimiter(requests_per_minute=6, cancel=cancel)  # one start per 10 s
    limiter.acquire()
    threading.Timer(0.1, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(SessionCancelled):
        limiter.acquire()
    assert time.monotonic() - began < 0.5


def test_cancel_given_to_acquire() -> None:
    limiter = RateLimiter(requests_per_minute=6)
    limiter.acquire()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(SessionCancelled):
        limiter.acquire(cancel=cancel)


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, True])
def test_bad_limits_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(requests_per_minute=bad)
    with pytest.raises(ValueError, match="tokens_per_minute"):
        RateLimiter(tokens_per_minute=bad)
