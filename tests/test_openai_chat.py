"""OpenAIChat (the real openai client) against a real OpenAI-compatible server on 127.0.0.1,
with call_with_retries and RateLimiter: no mock of the HTTP layer."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from blarify_lab.llm import as_llm_provider, model_identity
from blarify_lab.llm_calls import call_llm
from blarify_lab.openai_chat import OpenAIChat
from blarify_lab.pacing import RateLimiter
from blarify_lab.retries import LLMCallError, RetryEvent, call_with_retries
from blarify_lab.usage import Completion

from .llm_server import Fault, LLMTestServer, answer_for

pytest.importorskip("openai")

KEY = "sk-blarify-test-0xC0FFEE-do-not-leak"
WRONG_KEY = "sk-wrong-0xBADC0DE-must-not-leak"
PROMPT = "# Document this node\n## Node\nPath: /pkg/mod.py::f\nLabels: FUNCTION\n"


@pytest.fixture
def llm_server() -> Iterator[LLMTestServer]:
    with LLMTestServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def llm(llm_server: LLMTestServer) -> Iterator[OpenAIChat]:
    with OpenAIChat("test-model", base_url=llm_server.base_url, api_key=KEY, timeout=5) as chat:
        yield chat


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def retried(llm: OpenAIChat, **kwargs: object) -> tuple[Completion, int]:
    options: dict[str, object] = {"max_retries": 4, "deadline": None, "base_delay": 0.01}
    options.update(kwargs)
    return call_with_retries(lambda: llm.complete(PROMPT), **options)  # type: ignore[arg-type]


# --- answers and usage ----------------------------------------------------------------------


def test_usage_is_read_from_the_server(llm: OpenAIChat, llm_server: LLMTestServer) -> None:
    completion = llm.complete(PROMPT)
    assert completion.text == answer_for(PROMPT) == "Documents /pkg/mod.py::f."
    assert completion.estimated is False
    assert completion.prompt_tokens == len(PROMPT.split())
    assert completion.completion_tokens == len(completion.text.split())
    assert llm.get_completion(PROMPT) == completion.text
    first = llm_server.chat_requests()[0]
    assert first.authorization == f"Bearer {KEY}"  # the key was sent
    assert first.body["model"] == "test-model"
    assert first.body["messages"] == [{"role": "user", "content": PROMPT}]
    assert first.body["temperature"] == 0.0 and "max_tokens" not in first.body


def test_usage_is_estimated_when_the_server_reports_none(
    llm: OpenAIChat, llm_server: LLMTestServer
) -> None:
    llm_server.set_report_usage(False)
    completion = llm.complete(PROMPT)
    assert completion.estimated is True
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0


def test_options_are_sent(llm_server: LLMTestServer) -> None:
    with OpenAIChat(
        "other-model", base_url=llm_server.base_url, api_key=KEY, temperature=0.7, max_tokens=64
    ) as chat:
        chat.complete("hello")
    body = llm_server.chat_requests()[0].body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("other-model", 0.7, 64)


def test_the_adapter_uses_openai_chat_usage_and_identity(llm: OpenAIChat) -> None:
    adapter = as_llm_provider(llm)
    assert adapter.identity == model_identity(llm)
    # the endpoint and the generation settings are part of who answers
    assert model_identity(llm) == (f'test-model {{"base_url":"{llm.base_url}","temperature":0}}')
    assert adapter.complete(PROMPT).estimated is False
    assert adapter.get_completion(PROMPT) == "Documents /pkg/mod.py::f."


def test_models_endpoint(llm_server: LLMTestServer) -> None:
    request = urllib.request.Request(
        f"{llm_server.base_url}/models", headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["data"][0]["id"] == "test-model"


# --- retries --------------------------------------------------------------------------------


def test_a_429_then_success_takes_2_attempts(llm: OpenAIChat, llm_server: LLMTestServer) -> None:
    llm_server.enqueue(Fault(429, retry_after=0.05))
    completion, attempts = retried(llm)
    assert attempts == 2 and completion.text == "Documents /pkg/mod.py::f."
    assert llm_server.statuses() == [429, 200]


def test_500_502_then_success_takes_3_attempts(llm: OpenAIChat, llm_server: LLMTestServer) -> None:
    llm_server.enqueue(Fault(500), Fault(502))
    events: list[RetryEvent] = []
    _, attempts = retried(llm, on_retry=events.append)
    assert attempts == 3
    assert llm_server.statuses() == [500, 502, 200]  # each attempt reached the server once
    assert [e.status_code for e in events] == [500, 502]


def test_a_wrong_key_is_not_retried_and_never_shown(
    llm_server: LLMTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # openai's, httpx's and ours
    chat = OpenAIChat("test-model", base_url=llm_server.base_url, api_key=WRONG_KEY)
    with pytest.raises(LLMCallError) as info:
        call_with_retries(lambda: chat.complete(PROMPT), max_retries=4, deadline=None)
    err = info.value
    assert (err.attempts, err.status_code, err.reason) == (1, 401, "permanent")
    assert llm_server.statuses() == [401]
    assert "Incorrect API key provided" in str(err)  # the server's message...
    assert llm_server.chat_requests()[0].authorization == f"Bearer {WRONG_KEY}"  # it was sent
    cause = err.__cause__
    assert cause is not None
    texts = [
        str(err),
        repr(err),
        str(cause),
        repr(cause),
        repr(getattr(cause, "body", None)),
        str(getattr(cause, "message", "")),
        "".join(traceback.format_exception(err)),
        caplog.text,
        repr(chat),
        str(vars(chat)),
    ]
    for text in texts:
        assert WRONG_KEY not in text  # ... without the key the server echoed
    assert "***" in str(err)
    chat.close()


def test_the_key_is_not_in_repr_or_logs(
    llm: OpenAIChat, llm_server: LLMTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm_server.enqueue(Fault(429, retry_after=0.01))
    retried(llm)
    assert KEY not in repr(llm) and KEY not in str(llm) and KEY not in str(vars(llm))
    assert repr(llm) == f"OpenAIChat(model='test-model', base_url='{llm_server.base_url}')"
    assert KEY not in caplog.text
    assert "retrying" in caplog.text  # there were log lines to look at


def test_base_url_credentials_are_not_shown(llm_server: LLMTestServer) -> None:
    url = f"http://user:hunter2@127.0.0.1:{llm_server.port}/v1"
    assert "hunter2" not in repr(OpenAIChat("m", base_url=url, api_key=KEY))


def test_retry_after_is_honoured(llm: OpenAIChat, llm_server: LLMTestServer) -> None:
    llm_server.enqueue(Fault(429, retry_after=0.4), Fault(503, retry_after_ms=150))
    began = time.monotonic()
    _, attempts = retried(llm, base_delay=0.001)
    assert attempts == 3
    requests = llm_server.chat_requests()
    assert requests[1].t - requests[0].t >= 0.4  # measured at the server
    assert requests[2].t - requests[1].t >= 0.15
    assert time.monotonic() - began >= 0.55


def test_the_deadline_is_respected(llm: OpenAIChat, llm_server: LLMTestServer) -> None:
    llm_server.enqueue(Fault(429, retry_after=3.0))
    began = time.monotonic()
    with pytest.raises(LLMCallError) as info:
        retried(llm, deadline=began + 1.0)
    assert time.monotonic() - began < 0.5  # it did not sleep towards the deadline
    assert (info.value.attempts, info.value.reason) == (1, "deadline")
    assert llm_server.statuses() == [429]


def test_a_slow_answer_times_out_and_is_retried(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(Fault(200, delay=1.0))
    with OpenAIChat("m", base_url=llm_server.base_url, api_key=KEY, timeout=0.3) as chat:
        began = time.monotonic()
        completion, attempts = call_with_retries(
            lambda: chat.complete(PROMPT), max_retries=2, deadline=None, base_delay=0.01
        )
    assert attempts == 2 and completion.estimated is False
    assert time.monotonic() - began < 1.0


def test_a_server_that_is_gone_is_retried_then_reported() -> None:
    with LLMTestServer(api_key=KEY) as server:
        url = server.base_url
    with (
        OpenAIChat("m", base_url=url, api_key=KEY, timeout=2) as chat,
        pytest.raises(LLMCallError) as info,
    ):
        call_with_retries(
            lambda: chat.complete(PROMPT), max_retries=2, deadline=None, base_delay=0.01
        )
    assert (info.value.attempts, info.value.reason) == (3, "retries_exhausted")
    assert info.value.status_code is None
    assert type(info.value.__cause__).__name__ == "APIConnectionError"


# --- pacing against a server that refuses bursts --------------------------------------------


def _try(chat: OpenAIChat) -> int:
    try:
        chat.complete(PROMPT)
    except Exception as err:
        return getattr(err, "status_code", -1)
    return 200


def _burst(chat: OpenAIChat, calls: int, limiter: RateLimiter | None) -> list[int]:
    attempts: list[int] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        def call() -> Completion:
            if limiter is not None:
                limiter.acquire(100)
            return chat.complete(PROMPT)

        def on_retry(event: RetryEvent) -> None:
            if limiter is not None and event.status_code == 429:
                limiter.on_rate_limited(event.retry_after)

        n = call_with_retries(call, max_retries=10, deadline=None, on_retry=on_retry)[1]
        if limiter is not None:
            limiter.on_success()
        with lock:
            attempts.append(n)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(calls)))
    return attempts


def test_a_shared_limiter_keeps_a_rate_limited_server_happy() -> None:
    rpm, calls = 1200, 24  # the server refuses more than 21 requests in any second
    with (
        LLMTestServer(api_key=KEY, requests_per_minute=rpm) as server,
        OpenAIChat("m", base_url=server.base_url, api_key=KEY) as chat,
    ):
        # without pacing, 8 threads burst and the server refuses some (no retries here)
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(lambda _: _try(chat), range(32)))
        assert outcomes.count(429) >= 32 - rpm // 60 - 1
        assert server.statuses().count(429) == outcomes.count(429)
        time.sleep(1.0)  # let the server's window empty
        server.reset()
        began = time.monotonic()
        paced = _burst(chat, calls, RateLimiter(requests_per_minute=rpm))
        wall = time.monotonic() - began
    assert server.statuses() == [200] * calls  # not one 429
    assert paced == [1] * calls
    assert wall <= 1.15 * calls / rpm * 60 + 0.1


def test_a_clear_error_without_the_openai_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'blarify-lab\[openai\]'"):
        OpenAIChat("m", base_url="http://127.0.0.1:9/v1")


# --- keys -----------------------------------------------------------------------------------


def test_no_key_and_no_base_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIChat("gpt-4o-mini")


def test_the_key_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LLMTestServer(api_key=KEY) as server:
        with OpenAIChat("m", base_url=server.base_url) as chat:
            chat.complete(PROMPT)
        assert server.chat_requests()[0].authorization == f"Bearer {KEY}"


def test_a_local_server_needs_no_key() -> None:
    with LLMTestServer(api_key=None) as server:
        with OpenAIChat("llama3.1", base_url=server.base_url) as chat:
            assert chat.complete(PROMPT).text == "Documents /pkg/mod.py::f."
        assert server.chat_requests()[0].authorization == "Bearer not-needed"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"timeout": 0}, "timeout"), ({"max_tokens": 0}, "max_tokens")],
)
def test_bad_options_are_refused(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        OpenAIChat("m", base_url="http://127.0.0.1:9/v1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model"):
        OpenAIChat(" ", base_url="http://127.0.0.1:9/v1")


# --- call_llm: the pieces together ----------------------------------------------------------


def test_call_llm_paces_retries_and_reports(llm: OpenAIChat, llm_server: LLMTestServer) -> None:
    limiter = RateLimiter(requests_per_minute=600, recovery_step=0.5)
    llm_server.enqueue(Fault(429, retry_after=0.2))
    outcome = call_llm(llm.complete, PROMPT, limiter=limiter, max_retries=3, deadline=None)
    assert outcome.attempts == 2 and outcome.completion.estimated is False
    assert outcome.backoff_s == pytest.approx(0.2)
    assert outcome.waited_s >= 0.0
    stats = limiter.stats()
    assert stats.rate_limited == 1 and stats.acquired == 2
    assert stats.factor == 1.0  # halved by the 429, restored by the success (step 0.5)
    assert llm_server.statuses() == [429, 200]


def test_call_llm_gives_up_at_the_deadline_without_calling(
    llm: OpenAIChat, llm_server: LLMTestServer
) -> None:
    limiter = RateLimiter(requests_per_minute=60)  # one start per second
    call_llm(llm.complete, PROMPT, limiter=limiter, max_retries=0, deadline=None)
    with pytest.raises(LLMCallError) as info:
        call_llm(
            llm.complete,
            PROMPT,
            limiter=limiter,
            max_retries=3,
            deadline=time.monotonic() + 0.3,
        )
    assert (info.value.attempts, info.value.reason) == (0, "deadline")
    assert len(llm_server.chat_requests()) == 1


def test_call_llm_without_a_limiter(llm: OpenAIChat) -> None:
    outcome = call_llm(llm.complete, PROMPT, limiter=None, max_retries=0, deadline=None)
    assert (outcome.attempts, outcome.waited_s, outcome.backoff_s) == (1, 0.0, 0.0)
