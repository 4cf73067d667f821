"""``OpenAIChat``: an LLM provider for OpenAI and every OpenAI-compatible server.

::

    llm = OpenAIChat("gpt-4o-mini")                                        # OPENAI_API_KEY
    llm = OpenAIChat("qwen2.5-coder", base_url="http://localhost:11434/v1") # Ollama, no key
    llm.complete(prompt)        # Completion(text, prompt_tokens, completion_tokens, estimated)
    llm.get_completion(prompt)  # the text only

Built on the official ``openai`` client (``pip install 'blarify-lab[openai]'``), imported when
the first ``OpenAIChat`` is made. Works with vLLM, LM Studio, llama.cpp's server and Ollama
(``base_url`` ending in ``/v1``). One attempt per call (the client is built with
``max_retries=0``): retries and pacing belong to the caller (``blarify_lab.retries``,
``blarify_lab.pacing``), so each attempt is counted once. Errors are the ``openai`` client's
own (``RateLimitError``, ``AuthenticationError``, ``APITimeoutError`` …), with the API key
scrubbed from their text. The key never appears in a repr, a log line or an error message.

This module imports only ``blarify_lab.usage`` and ``blarify_lab.http_deadline``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from .http_deadline import attempt_deadline, bound_attempts
from .usage import Completion, estimate_tokens

if TYPE_CHECKING:
    import openai

__all__ = ["LOCAL_PLACEHOLDER_KEY", "OpenAIChat", "scrub_secret"]

LOCAL_PLACEHOLDER_KEY = "not-needed"
_MASK = "***"


class _Secret:
    """A string that does not show itself (repr, str, vars() of its holder)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')"

    __str__ = __repr__


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as err:
        raise ImportError(
            "OpenAIChat needs the openai package: pip install 'blarify-lab[openai]'"
        ) from err
    return openai


def _safe_url(url: str | None) -> str | None:
    """``url`` without a user or password in it."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _scrub_value(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, _MASK)
    if isinstance(value, Mapping):
        return {k: _scrub_value(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(v, secret) for v in value)
    return value


def scrub_secret(error: BaseException, secret: str) -> BaseException:
    """Replace ``secret`` by ``***`` in ``error``'s text (``args``, ``message``, ``body``, notes)
    and in the exceptions chained to it; return ``error`` (changed in place)."""
    if not secret:
        return error
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        try:
            err.args = tuple(_scrub_value(a, secret) for a in err.args)
            for attr in ("message", "body", "__notes__"):
                value = getattr(err, attr, None)
                if isinstance(value, str | Mapping | list):
                    setattr(err, attr, _scrub_value(value, secret))
        except (AttributeError, TypeError):  # read-only attributes: leave them
            pass
        todo.extend((err.__cause__, err.__context__))
    return error


class OpenAIChat:
    """Chat completions from OpenAI or any OpenAI-compatible server.

    ``api_key`` falls back to ``$OPENAI_API_KEY``; with a ``base_url`` (or
    ``$OPENAI_BASE_URL``) and no key, the placeholder ``"not-needed"`` is sent (local servers
    ignore it); with neither, ``ValueError``. ``temperature`` 0 by default (reproducible
    documentation); ``max_tokens`` and ``top_p`` None let the server decide; ``timeout`` in
    seconds bounds each attempt as a whole (connecting, sending and reading, however slowly
    the server trickles its answer). The model, ``base_url`` and the generation settings are
    the provider's identity (``model_identity``). ``max_retry_wait_s``, when set, is the longest
    ``Retry-After`` from this server that the processor waits before it fails the node (the
    smaller of it and the processor's own ``max_retry_wait_s``).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        top_p: float | None = None,
        timeout: float = 120.0,
        max_retry_wait_s: float | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_retry_wait_s is not None and not 0 <= max_retry_wait_s < float("inf"):
            raise ValueError(f"max_retry_wait_s must be >= 0 seconds, got {max_retry_wait_s!r}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens!r}")
        openai_module = _import_openai()
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None:
            if base_url is None:
                raise ValueError(
                    "OpenAIChat needs an API key: pass api_key=... or set OPENAI_API_KEY "
                    "(for a local OpenAI-compatible server, pass its base_url=... and no key)"
                )
            key = LOCAL_PLACEHOLDER_KEY
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.top_p = top_p
        self.timeout = timeout
        self.max_retry_wait_s = max_retry_wait_s
        self._key = _Secret(key)
        self._client: openai.OpenAI = openai_module.OpenAI(
            api_key=key, base_url=base_url, timeout=timeout, max_retries=0
        )
        # ``timeout`` bounds the whole attempt, not each read: a trickling server is cut off.
        self._bounded = bound_attempts(getattr(self._client, "_client", None))

    def complete(self, prompt: str, *, system: str | None = None) -> Completion:
        """One chat completion of ``prompt`` (as the user message, after ``system`` as the
        system message when given), with the usage the server reports (``estimated=False``),
        or an estimate when it reports none, and its ``finish_reason`` (``"length"``: cut
        short by ``max_tokens``)."""
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.top_p is not None:
            kwargs["top_p"] = self.top_p
        try:
            with attempt_deadline(self.timeout):
                response = self._client.chat.completions.create(**kwargs)
        except BaseException as err:
            scrub_secret(err, self._key.get())
            raise
        if not response.choices:
            raise ValueError(f"{self.model}: the server answered with no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        finish = choice.finish_reason if isinstance(choice.finish_reason, str) else None
        usage = response.usage
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
            return Completion(text, prompt_tokens, completion_tokens, False, finish)
        asked = estimate_tokens(prompt) + (estimate_tokens(system) if system else 0)
        return Completion(text, asked, estimate_tokens(text), True, finish)

    def get_completion(self, prompt: str) -> str:
        """The text of ``complete(prompt)``."""
        return self.complete(prompt).text

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f", base_url={_safe_url(self.base_url)!r}" if self.base_url else ""
        return f"OpenAIChat(model={self.model!r}{where})"
