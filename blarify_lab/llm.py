"""LLM providers: adapt what the user has, and an offline summariser for demos and tests."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .prompts import parse_prompt

__all__ = ["ExtractiveSummarizer", "LLMProvider", "as_llm_provider", "model_identity"]


@runtime_checkable
class LLMProvider(Protocol):
    """Anything that turns a prompt into a completion."""

    def get_completion(self, prompt: str) -> str: ...


class _CallableProvider:
    def __init__(self, fn: Callable[[str], Any], kind: str) -> None:
        self._fn = fn
        self._kind = kind

    def get_completion(self, prompt: str) -> str:
        return _check_text(self._fn(prompt))

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


def as_llm_provider(llm: object) -> LLMProvider:
    """Wrap ``llm`` so that ``get_completion(prompt)`` returns ``str`` or raises ``TypeError``.

    Accepts an object with ``get_completion``, a LangChain-style chat model (``invoke`` returning
    a message with ``.content``), or a plain callable ``prompt -> str``.
    """
    if isinstance(llm, _CallableProvider):
        return llm
    get_completion = getattr(llm, "get_completion", None)
    if callable(get_completion):
        return _MethodProvider(get_completion, f"{type(llm).__name__}.get_completion")
    invoke = getattr(llm, "invoke", None)
    if callable(invoke):
        return _MethodProvider(invoke, f"{type(llm).__name__}.invoke")
    if callable(llm):
        return _CallableProvider(llm, getattr(llm, "__name__", type(llm).__name__))
    raise TypeError(
        f"{type(llm).__name__} is not an LLM provider: pass an object with "
        "get_completion(prompt) -> str, a chat model with invoke(prompt), or a callable"
    )


def model_identity(llm: object) -> str:
    """Who writes the descriptions, for documentation reuse: another identity, no reuse.

    The provider's ``model`` attribute (or ``model_name``, as LangChain chat models have it)
    when it is a string; else the provider's qualified class name (for a plain function, the
    function's qualified name; for a bound method, its object's identity).
    """
    for attribute in ("model", "model_name"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str) and value:
            return value
    owner = getattr(llm, "__self__", None)
    if owner is not None and not isinstance(owner, type) and owner is not llm:
        return model_identity(owner)
    if inspect.isfunction(llm) or inspect.isbuiltin(llm):
        return f"{llm.__module__}.{llm.__qualname__}"
    cls = type(llm)
    return f"{cls.__module__}.{cls.__qualname__}"


class ExtractiveSummarizer:
    """A deterministic, offline stand-in for an LLM: it summarises only what the prompt holds.

    It reads the prompt that the processor builds (path, labels, source, children), and answers
    with the node's kind, its signature and the first line of its docstring, and what it
    contains. No network, no randomness: the same graph always gets the same documentation.
    """

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
            parts.append(doc)
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
