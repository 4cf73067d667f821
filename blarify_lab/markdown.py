"""Markdown that text from outside (an LLM's descriptions, file names) cannot take over.

Pure functions. Nothing written through them renders as active HTML, a link or an image:

* ``inline(name)``: a name as literal text (headings, link text); every character Markdown could
  read as syntax is backslash-escaped.
* ``code_span(text)``: text in a code span that no backtick inside can close early.
* ``description(text)``: an LLM's description, readable formatting kept (emphasis, lists,
  one-line code spans) but no raw HTML, links, images, autolinks, entities, tables or fences:
  ``<``, ``[``, ``]``, ``&``, ``|``, ``~`` and ``\\`` are escaped outside code spans, and a code
  span is kept only when it opens and closes on one line (a backtick without its partner is
  escaped), so that the renderer pairs exactly the backticks paired here.
"""

from __future__ import annotations

import re

__all__ = ["code_span", "description", "inline"]

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|&!~])")
_TEXT_SPECIAL = re.compile(r"([\\<\[\]&|~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BACKTICKS = re.compile(r"`+")


def _printable(text: str) -> str:
    """Control characters (NUL, escape, a stray carriage return) as U+FFFD."""
    return _CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))


def inline(text: str) -> str:
    """``text`` as literal Markdown text on one line: ``__init__`` stays ``__init__``."""
    one_line = _printable(text).replace("\n", "\ufffd").replace("\t", " ")
    return _INLINE_SPECIAL.sub(r"\\\1", one_line)


def code_span(text: str) -> str:
    """``text`` in a code span, fenced by one backtick more than its longest run of backticks
    (padded with a space where it starts or ends with a backtick or a space)."""
    one_line = _printable(text).replace("\n", "\ufffd")
    longest = max((len(run) for run in _BACKTICKS.findall(one_line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if one_line[:1] in ("`", " ") or one_line[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def description(text: str) -> str:
    """An LLM's description as Markdown that shows it and runs nothing (see the module)."""
    return "\n".join(_line(line) for line in _printable(text).strip().split("\n"))


def _line(line: str) -> str:
    """One line: code spans that close on it kept as they are, everything else escaped."""
    out: list[str] = []
    runs = list(_BACKTICKS.finditer(line))
    pos = i = 0
    while i < len(runs):
        opening = runs[i]
        closing = next(
            (k for k in range(i + 1, len(runs)) if len(runs[k].group()) == len(opening.group())),
            None,
        )
        out.append(_TEXT_SPECIAL.sub(r"\\\1", line[pos : opening.start()]))
        if closing is None or "|" in line[opening.start() : runs[closing].end()]:
            # no partner on this line (or a table could split it): literal backticks
            out.append("\\`" * len(opening.group()))
            pos, i = opening.end(), i + 1
            continue
        out.append(line[opening.start() : runs[closing].end()])
        pos, i = runs[closing].end(), closing + 1
    out.append(_TEXT_SPECIAL.sub(r"\\\1", line[pos:]))
    return "".join(out)
