"""The prompt format, in one place: build a node's prompt, parse it back, compose texts.

A prompt is Markdown-like sections::

    Write concise documentation for this node of a code graph, ...
    ## Node
    Path: /pkg/mod.py::func
    Labels: FUNCTION
    Name: func
    ## Source
    ```
    def func(): ...
    ```
    ## Children
    - /pkg/mod.py::func.inner: its description, on one line
    - FUNCTION decode (/repo/json/decoder.py#JSONDecoder.decode): a child named by kind
      and name too (graphs whose definitions share their file's path: blarify's)

``parse_prompt`` reads it back (the offline summariser, the tests and the benchmarks use it).
A node's *text* is its path, its description, then its children's texts indented, cut at
``max_text_chars``. Pure functions: no database, no LLM.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "CYCLE_MARK",
    "DEFAULT_MAX_DESCRIPTION_CHARS",
    "DEFAULT_MAX_TEXT_CHARS",
    "ERROR_MARK",
    "MAX_CHILD_SUMMARY_CHARS",
    "MAX_SOURCE_CHARS",
    "ChildText",
    "NodeContent",
    "ParsedPrompt",
    "build_prompt",
    "clean_description",
    "compose_text",
    "error_description",
    "first_error_line",
    "input_hash",
    "parse_prompt",
]

ERROR_MARK = "[ERROR]"
CYCLE_MARK = "[CYCLE_DETECTED]"
DEFAULT_MAX_TEXT_CHARS = 4000
MAX_SOURCE_CHARS = 6000
MAX_CHILD_SUMMARY_CHARS = 500
DEFAULT_MAX_DESCRIPTION_CHARS = 20_000
INSTRUCTION = (
    "Write concise documentation for this node of a code graph, using its source and its "
    "children's documentation."
)
NOT_DOCUMENTED = "(not documented yet: part of a cycle)"


@dataclass(frozen=True, slots=True)
class NodeContent:
    """What a prompt says about the node itself."""

    path: str
    labels: tuple[str, ...] = ()
    name: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class ChildText:
    """One child as its parent sees it: its path, description and full text (None: unknown);
    ``kind`` and ``name`` when the prompt names it by them."""

    path: str
    description: str | None
    text: str | None
    kind: str | None = None
    name: str | None = None

    @property
    def title(self) -> str:
        """How a prompt names the child: ``KIND name (path)``, or its path alone."""
        if self.kind and self.name:
            return f"{_one_line(self.kind)} {_one_line(self.name)} ({self.path})"
        return self.path


@dataclass(frozen=True)
class ParsedPrompt:
    """A prompt read back into its parts."""

    path: str = ""
    labels: tuple[str, ...] = ()
    name: str = ""
    source: str = ""
    children: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    more_children: int = 0  # listed as "... N children in all" when the budget ran out

    @property
    def child_paths(self) -> list[str]:
        return [path for path, _ in self.children]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_prompt(node: NodeContent, children: Sequence[ChildText], *, max_text_chars: int) -> str:
    """The prompt for one node: its content and its children's descriptions (by path order),
    the children's part within ``max_text_chars``."""
    lines = [INSTRUCTION, "## Node", f"Path: {node.path}"]
    lines.append(f"Labels: {', '.join(node.labels)}")
    if node.name:
        lines.append(f"Name: {_one_line(node.name)}")
    source = node.source
    if isinstance(source, str) and source.strip():
        clipped = source[:MAX_SOURCE_CHARS]
        more = len(source) - len(clipped)
        lines += [
            "## Source",
            "```",
            clipped + (f"\n# ... {more} more characters" if more else ""),
            "```",
        ]
    if children:
        lines.append("## Children")
        budget = max_text_chars
        for child in sorted(children, key=lambda c: c.path):
            if child.description is None:
                summary = NOT_DOCUMENTED
            else:
                summary = _one_line(child.description) or "(no description)"
            entry = f"- {child.title}: {summary[:MAX_CHILD_SUMMARY_CHARS]}"
            if budget - len(entry) < 0:
                lines.append(f"- ... {len(children)} children in all")
                break
            budget -= len(entry)
            lines.append(entry)
    return "\n".join(lines)


_SECTION = re.compile(r"^## (?P<name>[A-Za-z ]+)\n(?P<body>.*?)(?=^## |\Z)", re.M | re.S)
_MORE = re.compile(r"^- \.\.\. (\d+) children in all$")
_TITLED = re.compile(r"^\S+ \S+ \((?P<path>.+)\)$")


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Read a prompt made by ``build_prompt`` back into its parts (unknown parts stay empty)."""
    sections = {m["name"].strip().lower(): m["body"] for m in _SECTION.finditer(prompt)}
    fields: dict[str, str] = {}
    for line in sections.get("node", "").splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("Path", "Labels", "Name"):
            fields[key] = value.strip()
    source_lines = sections.get("source", "").strip("\n").splitlines()
    if source_lines and source_lines[0].startswith("```"):
        source_lines = source_lines[1:]
    if source_lines and source_lines[-1].startswith("```"):
        source_lines = source_lines[:-1]
    children: list[tuple[str, str]] = []
    more = 0
    for line in sections.get("children", "").splitlines():
        m = _MORE.match(line)
        if m:
            more = int(m[1])
        elif line.startswith("- "):
            path, _, summary = line[2:].partition(": ")
            titled = _TITLED.match(path)
            children.append((titled["path"] if titled else path, summary))
    labels = tuple(x.strip() for x in fields.get("Labels", "").split(",") if x.strip())
    return ParsedPrompt(
        path=fields.get("Path", ""),
        labels=labels,
        name=fields.get("Name", ""),
        source="\n".join(source_lines),
        children=children,
        more_children=more,
    )


def compose_text(
    path: str, description: str, children: Sequence[ChildText], *, max_text_chars: int
) -> str:
    """``path``, the description, then the children's texts indented, within the limit."""
    head = f"{path}\n{description.strip()}"
    parts = [head]
    used = len(head)
    ordered = sorted(children, key=lambda c: c.path)
    for k, child in enumerate(ordered):
        if child.text is None:
            continue
        section = "\n" + "\n".join("  " + line for line in child.text.splitlines())
        if used + len(section) > max_text_chars:
            room = max_text_chars - used - 60
            if room > 80:
                parts.append(section[:room].rsplit("\n", 1)[0])
            parts.append(f"\n  ... {len(ordered) - k} of {len(ordered)} children not shown")
            break
        parts.append(section)
        used += len(section)
    return "".join(parts)


def error_description(err: BaseException) -> str:
    """The description of a node whose documentation failed."""
    return f"{ERROR_MARK} {type(err).__name__}: {_one_line(str(err))}"


def first_error_line(text: str) -> str:
    """The message after the first ``[ERROR]`` marker in a text."""
    for line in text.splitlines():
        if ERROR_MARK in line:
            return line.split(ERROR_MARK, 1)[1].strip()
    return "failed"


def input_hash(model: str, prompt: str) -> str:
    """What a description was made from: the model's identity and the prompt exactly as sent."""
    digest = hashlib.sha256()
    digest.update(model.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(prompt.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def clean_description(text: str, max_chars: int) -> str:
    """An LLM's answer made safe to store: at most ``max_chars`` characters (cut with a
    marker), no NUL bytes and no lone surrogates (each replaced by U+FFFD)."""
    total = len(text)
    if total > max_chars:
        text = text[:max_chars]
    text = text.replace("\0", "\ufffd")
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if total > max_chars:
        text += f"\n[... cut at {max_chars:,} of {total:,} characters]"
    return text
