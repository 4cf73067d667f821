"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

::

    with LLMTestServer(api_key="sk-test", requests_per_minute=600) as server:
        llm = OpenAIChat("test-model", base_url=server.base_url, api_key="sk-test")
        server.enqueue(Fault(429, retry_after=0.2), Fault(500))   # the next two calls fail
        llm.complete("Path: /pkg/mod.py")
        server.chat_requests()                                    # what it received

Speaks ``POST /v1/chat/completions`` and ``GET /v1/models`` (stdlib ``ThreadingHTTPServer``,
HTTP/1.1 keep-alive, loopback only). Answers deterministically: ``"Documents <path>."`` for the
first ``Path:`` line of the prompt (else its first line), with ``usage`` counted in
whitespace-separated words (``report_usage=False`` leaves ``usage`` out). Can inject scripted
faults (any status, ``Retry-After``/``retry-after-ms``, a delay), a wrong-key 401 that echoes
the key it got (as OpenAI's does, so tests can prove the client scrubs it), a delay on every
answer, a trickle (every answer, or one, sent one byte at a time), a ``finish_reason`` of
``"length"``, and a server-side rate limit: at most ``requests_per_minute / 60 + 1`` accepted
requests in any sliding one-second window, a 429 with ``Retry-After`` above it. Every request
is recorded (time, method, path, headers, JSON body, status answered).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["Fault", "LLMTestServer", "RecordedRequest", "answer_for"]


@dataclass(frozen=True)
class Fault:
    """A scripted answer for one chat request: ``status`` with an OpenAI-style error body,
    optional ``Retry-After`` (seconds, sent as given) or ``retry-after-ms``, after ``delay``
    seconds. ``status=200`` with a delay makes one slow success; with ``trickle_s`` one that
    dribbles out byte by byte; with ``finish_reason="length"`` one cut short."""

    status: int
    retry_after: float | None = None
    retry_after_ms: float | None = None
    message: str | None = None
    delay: float = 0.0
    trickle_s: float = 0.0  # > 0: the whole answer is sent one byte at a time, this far apart
    finish_reason: str | None = None  # a 200's finish_reason (else the server's)


@dataclass(frozen=True)
class RecordedRequest:
    t: float  # time.monotonic() when it arrived
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class _State:
    api_key: str | None
    model: str
    delay: float
    report_usage: bool
    window_limit: int | None
    trickle_s: float = 0.0
    finish_reason: str = "stop"
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    accepted: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=itertools.count)


def answer_for(prompt: str) -> str:
    """The deterministic answer: ``Documents <path>.`` for the prompt's first ``Path:`` line,
    else ``Documents <first line>.``."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Path:"):
            return f"Documents {line.split(':', 1)[1].strip()}."
    return f"Documents {lines[0] if lines else 'nothing'}."


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    timeout = 10  # an idle keep-alive connection is closed after this
    _t: float = 0.0
    _body: Any = None

    def _state(self) -> _State:
        assert isinstance(self.server, _Server)
        return self.server.state

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing ---------------------------------------------------------------------------

    def _send_json(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        trickle_s: float = 0.0,
    ) -> None:
        data = json.dumps(payload).encode()
        self._record(status)  # before answering: a client that has its answer sees the record
        if trickle_s > 0:
            self._trickle(status, data, headers or {}, trickle_s)
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _trickle(self, status: int, data: bytes, headers: dict[str, str], every: float) -> None:
        """The whole answer, status line included, one byte at a time ``every`` s apart."""
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
        try:
            for i in range(len(raw)):
                self.wfile.write(raw[i : i + 1])
                time.sleep(every)
        except OSError:  # the client gave up
            self.close_connection = True

    def _error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        self._send_json(status, body, headers)

    def _record(self, status: int) -> None:
        state = self._state()
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = RecordedRequest(self._t, self.command, self.path, headers, self._body, status)
        with state.lock:
            state.requests.append(record)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return raw.decode(errors="replace")

    def _authorized(self) -> bool:
        expected = self._state().api_key
        return expected is None or self.headers.get("Authorization") == f"Bearer {expected}"

    def _reject_key(self) -> int:
        sent = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        self._error(
            401,
            f"Incorrect API key provided: {sent}. You can find your API key in your account.",
            "invalid_request_error",
        )
        return 401

    # --- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._t, self._body = time.monotonic(), None
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"no route {self.path}", "invalid_request_error")
            return
        if not self._authorized():
            self._reject_key()
            return
        model = self._state().model
        self._send_json(
            200,
            {
                "object": "list",
                "data": [{"id": model, "object": "model", "created": 0, "owned_by": "tests"}],
            },
        )

    def do_POST(self) -> None:
        self._t = time.monotonic()
        self._body = body = self._read_body()
        if self.path.rstrip("/") == "/v1/chat/completions":
            self._chat(body)
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")

    def _chat(self, body: Any) -> int:
        state = self._state()
        if not self._authorized():
            return self._reject_key()
        with state.lock:
            fault = state.faults.popleft() if state.faults else None
            limited_for = self._admit(time.monotonic()) if fault is None else None
        if fault is not None and fault.status != 200:
            time.sleep(fault.delay)
            headers: dict[str, str] = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
            kind = "rate_limit_exceeded" if fault.status == 429 else "server_error"
            self._error(fault.status, fault.message or f"injected {fault.status}", kind, headers)
            return fault.status
        if limited_for is not None:
            self._error(
                429,
                f"Rate limit reached: {state.window_limit} requests per second",
                "rate_limit_exceeded",
                {"Retry-After": f"{limited_for:.3f}"},
            )
            return 429
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(400, "'messages' is a required property", "invalid_request_error")
            return 400
        time.sleep(fault.delay if fault is not None else state.delay)
        trickle_s = fault.trickle_s if fault is not None else state.trickle_s
        finish = (fault.finish_reason if fault is not None else None) or state.finish_reason
        prompt = "\n".join(
            str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict)
        )
        text = answer_for(prompt)
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{next(state.ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", state.model)),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
        }
        if state.report_usage:
            p, c = len(prompt.split()), len(text.split())
            payload["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        self._send_json(200, payload, trickle_s=trickle_s)
        return 200

    def _admit(self, now: float) -> float | None:
        """Under the lock: None if the request fits the sliding window (and count it), else the
        seconds until it would."""
        state = self._state()
        if state.window_limit is None:
            return None
        window = state.accepted
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= state.window_limit:
            return max(0.001, window[0] + 1.0 - now)
        window.append(now)
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class LLMTestServer:
    """The server; see the module docstring. ``base_url`` is ``http://127.0.0.1:<port>/v1``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        model: str = "test-model",
        delay: float = 0.0,
        report_usage: bool = True,
        requests_per_minute: float | None = None,
    ) -> None:
        window = None
        if requests_per_minute is not None:
            window = math.floor(requests_per_minute / 60) + 1
        self._state = _State(api_key, model, delay, report_usage, window)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not running"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- behaviour --------------------------------------------------------------------------

    @property
    def api_key(self) -> str | None:
        return self._state.api_key

    def enqueue(self, *faults: Fault) -> None:
        """The next chat requests get these answers, in order (then normal ones again)."""
        with self._state.lock:
            self._state.faults.extend(faults)

    def set_delay(self, seconds: float) -> None:
        self._state.delay = seconds

    def set_trickle(self, seconds_per_byte: float) -> None:
        """Send every answer one byte at a time (0: at once)."""
        self._state.trickle_s = seconds_per_byte

    def set_finish_reason(self, reason: str) -> None:
        """The ``finish_reason`` of every answer (``"length"``: cut short)."""
        self._state.finish_reason = reason

    def set_report_usage(self, report: bool) -> None:
        self._state.report_usage = report

    # --- what happened ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/") == "/v1/chat/completions"]

    def statuses(self) -> list[int]:
        return [r.status for r in self.chat_requests()]

    def reset(self) -> None:
        with self._state.lock:
            self._state.requests.clear()
            self._state.faults.clear()
            self._state.accepted.clear()
