"""LLM providers: adapt what the user has, and an offline summariser for demos and tests."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from .identity import ModelIdentityWarning, provider_identity
from .prompts import parse_prompt
from .usage import Completion

__all__ = [
    "ExtractiveSummarizer",
    "LLMAdapter",
    "LLMProvider",
    "ModelIdentityWarning",
    "as_llm_provider",
    "model_identity",
]


@runtime_checkable
class LLMProvider(Protocol):
    """Anything that turns a prompt into a completion."""

    def get_completion(self, prompt: str) -> str: ...


@runtime_checkable
class LLMAdapter(LLMProvider, Protocol):
    """What ``as_llm_provider`` returns: ``get_completion`` plus the usage of each call and the
    model's identity."""

    @property
    def identity(self) -> str: ...

    def complete(self, prompt: str) -> Completion: ...


class _CallableProvider:
    def __init__(
        self,
        fn: Callable[[str], Any],
        kind: str,
        *,
        source: object = None,
        complete: Callable[[str], Any] | None = None,
    ) -> None:
        self._fn = fn
        self._kind = kind
        self._source = fn if source is None else source
        self._complete = complete

    def get_completion(self, prompt: str) -> str:
        return _check_text(self._fn(prompt))

    def complete(self, prompt: str) -> Completion:
        """The completion and its usage: the provider's own ``complete`` when it has one, a
        chat message's ``usage_metadata`` when it carries one, else an estimate."""
        if self._complete is not None:
            return _to_completion(prompt, self._complete(prompt))
        return _to_completion(prompt, self._fn(prompt))

    @property
    def identity(self) -> str:
        """``model_identity`` of the wrapped provider."""
        return model_identity(self._source)

    def __repr__(self) -> str:
        return f"<LLM provider from {self._kind}>"


class _MethodProvider(_CallableProvider):
    pass


def _check_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    # LangChain chat models answer with a message whose text is in ``.content``.
    content = getattr(value, "content", None)
    if isinstance(content, str) and not isinstance(value, type):
        return content
    raise TypeError(
        f"the LLM provider returned {type(value).__name__}, expected str "
        "(get_completion must return the completion text)"
    )


def _usage_metadata(value: Any) -> tuple[int, int] | None:
    """``(input_tokens, output_tokens)`` of a LangChain ``AIMessage.usage_metadata`` (a dict, or
    an object with those attributes), when both are there as ints."""
    usage = getattr(value, "usage_metadata", None)
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        counts = (usage.get("input_tokens"), usage.get("output_tokens"))
    else:
        counts = (getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None))
    if all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return (int(counts[0]), int(counts[1]))  # pyright: ignore[reportArgumentType]
    return None


def _to_completion(prompt: str, value: Any) -> Completion:
    """A ``Completion`` from what a provider answered: a ``Completion`` as is; a chat message
    with ``usage_metadata``; anything else with a text (``str``, ``.content``, ``.text``), its
    usage estimated."""
    if isinstance(value, Completion):
        _check_text(value.text)
        return value
    text_attr = getattr(value, "text", None)
    if (
        not isinstance(value, str)
        and not isinstance(getattr(value, "content", None), str)
        and isinstance(text_attr, str)
    ):
        text = text_attr  # e.g. a LlamaIndex CompletionResponse
    else:
        text = _check_text(value)
    counts = _usage_metadata(value)
    finish = _finish_reason(value)
    if counts is not None:
        return Completion(text, counts[0], counts[1], False, finish)
    estimate = Completion.estimate(prompt, text)
    return Completion(text, estimate.prompt_tokens, estimate.completion_tokens, True, finish)


def _finish_reason(value: Any) -> str | None:
    """Why a chat message's model stopped: LangChain's ``response_metadata`` ``finish_reason``
    (OpenAI) or ``stop_reason`` (Anthropic, Bedrock), when it is a string."""
    metadata = getattr(value, "response_metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    for key in ("finish_reason", "stop_reason"):
        reason = metadata.get(key)  # pyright: ignore[reportUnknownMemberType]
        if isinstance(reason, str):
            return reason
    return None


def model_identity(llm: object) -> str:
    """Who answers, and how (``blarify_lab.identity.provider_identity``): the model's name with
    its endpoint and generation settings. An ``as_llm_provider`` adapter answers for what it
    wraps."""
    if isinstance(llm, _CallableProvider):
        return llm.identity
    return provider_identity(llm)


def as_llm_provider(llm: object) -> LLMAdapter:
    """Wrap ``llm`` so that ``get_completion(prompt)`` returns ``str`` or raises ``TypeError``.

    Accepts an object with ``get_completion``, a LangChain-style chat model (``invoke`` returning
    a message with ``.content``), or a plain callable ``prompt -> str``.

    The adapter also has ``complete(prompt) -> Completion`` (the provider's own ``complete``
    when it has one; else the usage a chat message reports in ``usage_metadata``; else an
    estimate, ``estimated=True``) and ``identity`` (``model_identity(llm)``).
    """
    if isinstance(llm, _CallableProvider):
        return llm
    own_complete = getattr(llm, "complete", None)
    own_complete = own_complete if callable(own_complete) else None
    get_completion = getattr(llm, "get_completion", None)
    if callable(get_completion):
        return _MethodProvider(
            get_completion,
            f"{type(llm).__name__}.get_completion",
            source=llm,
            complete=own_complete,
        )
    invoke = getattr(llm, "invoke", None)
    if callable(invoke):
        return _MethodProvider(
            invoke, f"{type(llm).__name__}.invoke", source=llm, complete=own_complete
        )
    if callable(llm):
        return _CallableProvider(
            llm, getattr(llm, "__name__", type(llm).__name__), source=llm, complete=own_complete
        )
    if own_complete is not None:  # only complete(prompt) -> Completion
        complete = own_complete

        def text_of(prompt: str) -> Any:
            return getattr(complete(prompt), "text", None)

        return _MethodProvider(
            text_of, f"{type(llm).__name__}.complete", source=llm, complete=own_complete
        )
    raise TypeError(
        f"{type(llm).__name__} is not an LLM provider: pass an object with "
        "get_completion(prompt) -> str or complete(prompt) -> Completion, a chat model with "
        "invoke(prompt), or a callable"
    )


class ExtractiveSummarizer:
    """A deterministic, offline stand-in for an LLM: it summarises only what the prompt holds.

    It reads the prompt that the processor builds (path, labels, source, children), and answers
    with the node's kind, its signature and the first line of its docstring, and what it
    contains. No network, no randomness: the same graph always gets the same documentation.
    """

    model = "blarify_lab.llm.ExtractiveSummarizer"  # its identity (no warning)

    def __init__(self, max_children: int = 8) -> None:
        self.max_children = max_children

    def get_completion(self, prompt: str) -> str:
        parsed = parse_prompt(prompt)
        kind = ", ".join(parsed.labels) or "node"
        name = parsed.name or parsed.path or "this node"
        source = parsed.source
        parts = [f"{kind.split(',')[0].strip().title()} `{name}`."]
        is_definition = any(k in kind.upper() for k in ("CLASS", "FUNCTION", "METHOD"))
        signature, doc = _signature_and_doc(source, first_definition=is_definition)
        if signature:
            parts.append(f"Signature: `{signature}`.")
        if doc:
            parts.append(doc if doc.endswith((".", "!", "?", ":")) else doc + ".")
        children = parsed.child_paths
        if children:
            shown = ", ".join(
                c.rsplit("/", 1)[-1].rsplit("::", 1)[-1] for c in children[: self.max_children]
            )
            total = max(parsed.more_children, len(children))
            more = total - min(len(children), self.max_children)
            parts.append(f"Contains {total}: {shown}" + (f" and {more} more." if more > 0 else "."))
        return " ".join(parts)

    def __repr__(self) -> str:
        return "ExtractiveSummarizer()"


def _signature_and_doc(source: str, *, first_definition: bool) -> tuple[str, str]:
    """Signature and first docstring paragraph of the source's first definition (or, with
    ``first_definition=False``, the module docstring), when the source parses."""
    if not source.strip():
        return "", ""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "", ""
    target: ast.AST = tree
    for stmt in tree.body if first_definition else []:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            target = stmt
            break
    signature = ""
    if isinstance(target, ast.FunctionDef | ast.AsyncFunctionDef):
        signature = f"{target.name}({ast.unparse(target.args)})"
        if target.returns is not None:
            signature += f" -> {ast.unparse(target.returns)}"
    elif isinstance(target, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in target.bases)
        signature = f"class {target.name}({bases})" if bases else f"class {target.name}"
    doc = ""
    if isinstance(target, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        doc = (ast.get_docstring(target) or "").strip().split("\n\n")[0].replace("\n", " ")
    return signature, doc
