"""A model's identity: who answers a prompt, and how (endpoint and generation settings).

::

    provider_identity(OpenAIChat("gpt-4o", temperature=0.2))
    # 'gpt-4o {"temperature":0.2}'

A stored description is reused only when its prompt and this identity are those of the run, so
the identity holds everything that changes an answer, and nothing secret. Pure: no I/O.

This module imports nothing from blarify_lab.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import threading
import warnings
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ModelIdentityWarning", "provider_identity"]

_NAME_ATTRS = ("model", "model_name", "model_id", "deployment_name")
# Where a model is served: OpenAI-compatible, Azure, Anthropic, Bedrock, Ollama, Vertex ...
_ENDPOINT_ATTRS = (
    "base_url",
    "openai_api_base",
    "api_base",
    "azure_endpoint",
    "anthropic_api_url",
    "endpoint",
    "endpoint_url",
    "api_version",
    "openai_api_version",
    "region_name",
    "location",
    "provider",
)
# What changes the answer: sampling, length, penalties, stops, extra keyword arguments.
_SETTING_ATTRS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "max_new_tokens",
    "num_predict",
    "num_ctx",
    "frequency_penalty",
    "presence_penalty",
    "repeat_penalty",
    "seed",
    "n",
    "stop",
    "stop_sequences",
    "reasoning_effort",
    "model_kwargs",
)
_SECRET_WORDS = ("key", "secret", "password", "token_", "credential", "auth")


class ModelIdentityWarning(UserWarning):
    """A provider's identity fell back to its class name: what answers is not known, so a
    change of model behind the same class would reuse documentation made by another model."""


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _attr(obj: object, name: str) -> object:
    try:
        return getattr(obj, name, None)
    except Exception:  # a property that raises
        return None


def _plain(value: object) -> object:
    """``value`` when it is JSON data (numbers, text, lists and maps of them), else None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):  # 0 and 0.0 are one setting
        if not math.isfinite(value):
            return repr(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, list | tuple):
        items = [_plain(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
        return items if all(i is not None for i in items) else None
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for k, v in value.items():  # pyright: ignore[reportUnknownVariableType]
            if not isinstance(k, str) or _secret(k):
                continue
            plain = _plain(v)
            if plain is not None:
                out[k] = plain
        return out or None
    return None


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) and "tokens" not in lowered


def _safe_endpoint(value: str) -> str:
    """An endpoint without credentials, query or fragment (the identity is stored)."""
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return value
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _with_settings(name: str, settings: dict[str, object]) -> str:
    """``name`` alone, or ``name {json of the settings}`` (sorted keys: one text per setup)."""
    if not settings:
        return name
    return f"{name} {json.dumps(settings, sort_keys=True, separators=(',', ':'))}"


def _settings_of(llm: object, name_attr: str | None) -> dict[str, object]:
    """The endpoint and generation settings an object exposes (None values left out)."""
    found: dict[str, object] = {}
    for attr in _NAME_ATTRS:
        value = _attr(llm, attr)
        if attr != name_attr and isinstance(value, str) and value.strip():
            found[attr] = value
    for attr in _ENDPOINT_ATTRS:
        value = _attr(llm, attr)
        if isinstance(value, str) and value.strip():
            found[attr] = _safe_endpoint(value)
        elif value is not None and type(value).__name__ == "URL":  # an httpx URL
            found[attr] = _safe_endpoint(str(value))
    for attr in _SETTING_ATTRS:
        value = _plain(_attr(llm, attr))
        if value is not None:
            found[attr] = value
    return found


def _fallback(name: str) -> str:
    """A class-name identity: warn once per identity per process."""
    with _warned_lock:
        first = name not in _warned
        _warned.add(name)
    if first:
        warnings.warn(
            f"the LLM provider {name} names no model (no model, model_name, model_id or "
            "deployment_name attribute): its class name is its identity, so stored "
            "documentation made by another model behind the same class would be reused; "
            "give it a `model` attribute",
            ModelIdentityWarning,
            stacklevel=3,
        )
    return name


def provider_identity(llm: object) -> str:
    """Who answers, and how: what a stored description's reuse depends on besides the prompt.

    The model's name is ``llm.model``, ``model_name``, ``model_id`` (Bedrock) or
    ``deployment_name`` (Azure), the first that is a non-empty string; to it are added, as
    sorted JSON, the other names, the endpoint (``base_url``, ``openai_api_base``,
    ``azure_endpoint``, ``endpoint_url``, ``region_name`` ..., without credentials or query)
    and every generation setting the object has (``temperature``, ``top_p``, ``max_tokens``,
    ``stop``, ``model_kwargs`` ...), e.g. ``gpt-4o {"temperature":0.2}``; a bare name when
    there are none. For ``functools.partial(call, model="x", ...)`` the model it names and its
    other keyword arguments (else the function with its bound arguments); a bound method of a
    model is that model; else the qualified name ``module.QualName`` of a function (a lambda's
    line added) or of the provider's class, which warns once (``ModelIdentityWarning``).
    Secrets (``api_key`` ...) never enter an identity."""
    for attr in _NAME_ATTRS:
        value = _attr(llm, attr)
        if isinstance(value, str) and value.strip():
            return _with_settings(value, _settings_of(llm, attr))
    if isinstance(llm, functools.partial):  # partial(call, model="x"): the model it names
        keywords = {k: v for k, v in llm.keywords.items() if not _secret(k)}
        for attr in _NAME_ATTRS:
            name = keywords.get(attr)
            if isinstance(name, str) and name.strip():
                rest = {k: _plain(v) for k, v in keywords.items() if k != attr}
                settings = {
                    k: _safe_endpoint(v) if k in _ENDPOINT_ATTRS and isinstance(v, str) else v
                    for k, v in rest.items()
                    if v is not None
                }
                return _with_settings(name, settings)
        bound = ", ".join(
            [repr(a) for a in llm.args]
            + [f"{k}={v!r}" if not _secret(k) else f"{k}=***" for k, v in llm.keywords.items()]
        )
        return f"{provider_identity(llm.func)}({bound})"
    owner = getattr(llm, "__self__", None) if inspect.ismethod(llm) else None
    if owner is not None and any(isinstance(_attr(owner, a), str) for a in _NAME_ATTRS):
        return provider_identity(owner)  # chat.invoke: the chat model's identity
    if inspect.isfunction(llm) or inspect.ismethod(llm) or inspect.isbuiltin(llm):
        name = f"{getattr(llm, '__module__', None) or 'builtins'}.{llm.__qualname__}"
        code = getattr(llm, "__code__", None)
        if llm.__name__ == "<lambda>" and code is not None:  # lambdas differ by their line
            name += f"@{code.co_firstlineno}"
        return name
    cls = type(llm)
    return _fallback(f"{cls.__module__}.{cls.__qualname__}")
