"""call_with_retries: what is retried, how long it waits, and what reaches the caller."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from blarify_lab.errors import BlarifyLabError, SessionCancelled
from blarify_lab.pacing import PacingTimeout
from blarify_lab.retries import (
    LLMCallError,
    RetryEvent,
    call_with_retries,
    error_message,
    is_transient,
    retry_after_seconds,
    status_code_of,
)


class Response:
    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers or {}


class StatusError(Exception):
    """Like openai's APIStatusError: ``status_code``, ``response``, ``body``."""

    def __init__(
        self, status: int, headers: dict[str, str] | None = None, message: str = ""
    ) -> None:
        super().__init__(f"Error code: {status}")
        self.status_code = status
        self.response = Response(status, headers)
        self.body = {"error": {"message": message or f"server says {status}"}}


class ResponseOnlyError(Exception):
    """Like requests' HTTPError: the status only on ``.response``."""

    def __init__(self, status: int) -> None:
        super().__init__("HTTP error")
        self.response = Response(status)


class APITimeoutError(Exception):  # named like openai's / anthropic's
    pass


class RemoteProtocolError(Exception):  # named like httpx's
    pass


class Script:
    """``fn`` for call_with_retries: raises the scripted errors in order, then answers."""

    def __init__(self, *errors: BaseException, answer: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.answer = answer

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run(fn: Callable[[], Any], **kwargs: Any) -> tuple[Any, int]:
    kwargs.setdefault("max_retries", 5)
    kwargs.setdefault("deadline", None)
    kwargs.setdefault("base_delay", 0.01)
    return call_with_retries(fn, **kwargs)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses(status: int) -> None:
    assert is_transient(StatusError(status))
    assert is_transient(ResponseOnlyError(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
def test_permanent_statuses(status: int) -> None:
    assert not is_transient(StatusError(status))


def test_transient_exceptions_without_status() -> None:
    for error in (TimeoutError(), ConnectionResetError(), APITimeoutError(), RemoteProtocolError()):
        assert is_transient(error), error
    for error in (ValueError(), TypeError(), KeyError(), RuntimeError()):
        assert not is_transient(error), error
    assert status_code_of(TimeoutError()) is None


def test_openai_exception_classes_are_classified() -> None:
    openai = pytest.importorskip("openai")
    try:  # the HTTP library the installed openai is built on
        httpx: Any = importlib.import_module("httpx2")
    except ImportError:
        httpx = importlib.import_module("httpx")

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    assert is_transient(openai.APITimeoutError(request=request))
    assert is_transient(openai.APIConnectionError(request=request))
    for status, transient in ((429, True), (503, True), (401, False), (400, False)):
        response = httpx.Response(status, request=request, headers={"retry-after": "1.5"})
        error = openai.APIStatusError("x", response=response, body=None)
        assert is_transient(error) is transient
        assert retry_after_seconds(error) == 1.5


def test_retry_after_headers() -> None:
    assert retry_after_seconds(StatusError(429, {"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(StatusError(429, {"Retry-After": "2"})) == 2.0
    assert retry_after_seconds(StatusError(429, {"retry-after": "0.4"})) == 0.4
    # retry-after-ms wins over retry-after
    assert (
        retry_after_seconds(StatusError(429, {"retry-after": "9", "retry-after-ms": "100"})) == 0.1
    )
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert retry_after_seconds(StatusError(429, {"retry-after": future})) == pytest.approx(
        30, abs=2
    )
    assert retry_after_seconds(StatusError(429, {"retry-after": "soon"})) is None
    assert retry_after_seconds(StatusError(429)) is None
    assert retry_after_seconds(TimeoutError()) is None


def test_a_429_then_success_takes_2_attempts() -> None:
    fn, sleeps = Script(StatusError(429)), Sleeps()
    assert run(fn, sleep=sleeps) == ("ok", 2)
    assert fn.calls == 2 and len(sleeps.waits) == 1


def test_500_502_then_success_takes_3_attempts_with_growing_backoff() -> None:
    fn, sleeps = Script(StatusError(500), StatusError(502)), Sleeps()
    assert run(fn, sleep=sleeps, base_delay=1.0) == ("ok", 3)
    first, second = sleeps.waits
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # base * 2^n, jitter in [1/2, 1]


def test_backoff_is_capped() -> None:
    fn, sleeps = Script(*[StatusError(503) for _ in range(6)]), Sleeps()
    assert run(fn, sleep=sleeps, max_retries=6, base_delay=1.0, max_delay=3.0)[1] == 7
    assert max(sleeps.waits) <= 3.0


def test_permanent_error_is_raised_at_once_with_the_server_message() -> None:
    fn, sleeps = Script(StatusError(401, message="Incorrect API key provided")), Sleeps()
    with pytest.raises(LLMCallError) as info:
        run(fn, sleep=sleeps)
    err = info.value
    assert isinstance(err, BlarifyLabError)
    assert (err.attempts, err.status_code, err.reason) == (1, 401, "permanent")
    assert "Incorrect API key provided" in str(err) and "HTTP 401" in str(err)
    assert err.server_message == "Incorrect API key provided"
    assert isinstance(err.__cause__, StatusError)
    assert fn.calls == 1 and sleeps.waits == []


def test_non_http_errors_are_permanent() -> None:
    fn = Script(TypeError("bad prompt"))
    with pytest.raises(LLMCallError, match="TypeError: bad prompt") as info:
        run(fn, sleep=Sleeps())
    assert (info.value.attempts, info.value.status_code) == (1, None)


def test_exhausted_retries_raise_the_last_error_with_the_attempts() -> None:
    fn, sleeps = Script(StatusError(503), StatusError(502), StatusError(500)), Sleeps()
    with pytest.raises(LLMCallError) as info:
        run(fn, sleep=sleeps, max_retries=2)
    err = info.value
    assert (err.attempts, err.status_code, err.reason) == (3, 500, "retries_exhausted")
    assert "after 3 attempts" in str(err)
    assert fn.calls == 3 and len(sleeps.waits) == 2


def test_max_retries_zero_means_one_attempt() -> None:
    with pytest.raises(LLMCallError) as info:
        run(Script(StatusError(429)), sleep=Sleeps(), max_retries=0)
    assert info.value.attempts == 1


def test_retry_after_is_honoured_exactly() -> None:
    fn, sleeps = (
        Script(
            StatusError(429, {"retry-after": "1.25"}), StatusError(429, {"retry-after-ms": "40"})
        ),
        Sleeps(),
    )
    assert run(fn, sleep=sleeps) == ("ok", 3)
    assert sleeps.waits == [1.25, 0.04]


def test_retry_after_measured_in_real_time() -> None:
    fn = Script(StatusError(429, {"retry-after": "0.3"}))
    began = time.monotonic()
    assert run(fn) == ("ok", 2)
    assert time.monotonic() - began >= 0.3


def test_on_retry_hears_each_retried_failure() -> None:
    events: list[RetryEvent] = []
    fn = Script(StatusError(429, {"retry-after": "0.5"}), TimeoutError("read timed out"))
    run(fn, sleep=Sleeps(), on_retry=events.append)
    assert [(e.attempt, e.status_code, e.retry_after) for e in events] == [
        (1, 429, 0.5),
        (2, None, None),
    ]
    assert events[0].wait_s == 0.5 and isinstance(events[1].error, TimeoutError)


def test_deadline_stops_before_a_wait_that_would_cross_it() -> None:
    fn, sleeps = Script(StatusError(429, {"retry-after": "5"})), Sleeps()
    with pytest.raises(LLMCallError) as info:
        run(fn, sleep=sleeps, deadline=time.monotonic() + 2.0)
    assert (info.value.attempts, info.value.reason, info.value.status_code) == (1, "deadline", 429)
    assert sleeps.waits == []  # no sleep at all


def test_deadline_in_real_time_is_never_slept_past() -> None:
    fn = Script(*[StatusError(503) for _ in range(50)])
    deadline = time.monotonic() + 0.5
    with pytest.raises(LLMCallError) as info:
        run(fn, max_retries=50, base_delay=0.05, max_delay=0.1, deadline=deadline)
    assert time.monotonic() <= deadline + 0.05  # the last call's own time at most
    assert info.value.reason == "deadline" and 3 <= info.value.attempts < 50


def test_cancel_cuts_a_backoff_short() -> None:
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    fn = Script(StatusError(429, {"retry-after": "10"}))
    began = time.monotonic()
    with pytest.raises(SessionCancelled):
        run(fn, cancel=cancel)
    assert time.monotonic() - began < 2.0 and fn.calls == 1


def test_error_message_prefers_the_server_body() -> None:
    assert error_message(StatusError(400, message="bad  model\nname")) == "bad model name"
    assert error_message(ValueError("plain")) == "plain"
    assert error_message(ValueError()) == "ValueError"


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        call_with_retries(lambda: 1, max_retries=-1, deadline=None)


def test_cancel_raised_by_fn_passes_through_unwrapped() -> None:
    fn = Script(StatusError(429), SessionCancelled("stop"))
    with pytest.raises(SessionCancelled, match="stop"):
        run(fn, sleep=Sleeps())
    assert fn.calls == 2


def test_a_pacing_timeout_in_fn_is_the_deadline_and_not_an_attempt() -> None:
    fn = Script(StatusError(429), PacingTimeout("too late"))
    with pytest.raises(LLMCallError) as info:
        run(fn, sleep=Sleeps())
    err = info.value
    assert (err.attempts, err.reason, err.status_code) == (1, "deadline", None)
    assert isinstance(err.__cause__, PacingTimeout) and fn.calls == 2


def test_our_own_errors_are_never_transient() -> None:
    assert not is_transient(PacingTimeout("x"))
    assert not is_transient(SessionCancelled("x"))
