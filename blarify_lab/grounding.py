"""Does a description name only what exists? The grounding check, on every answer.

::

    g = check_grounding(description, source, child_paths, node_path="/pkg/mod.py::f")
    g.named        # the identifiers the description names, in order, each once
    g.ungrounded   # those found neither in the node's source nor among its children's names
    g.ratio        # found / named (DocAgent's "existence ratio"); None when nothing is named

What counts as *named*: every identifier inside a code span (`` `x.y(z)` ``), and outside them
``CamelCase`` words (an upper-case letter inside the word: ``JSONDecoder``, ``scanString``),
``snake_case`` and ``_private`` / ``__dunder__`` words, dotted names (``json.loads``, two parts
of two letters or more, so ``e.g.`` is not one) and names called with parentheses
(``loads()``, ``loads(s)``). Left out: Python keywords and builtins, common English words (a
word before ``(`` is often prose), file names (``decoder.py``) and numbers.

What *exists*: every identifier of the node's source (Python's ``tokenize``: names, and the
identifiers inside its strings and comments, so a name a docstring mentions is grounded; other
text, or Python that does not tokenize, by a plain identifier pattern), the segments of the
node's path and of its children's paths (``/pkg/json/decoder.py::JSONDecoder.decode`` gives
``pkg``, ``json``, ``decoder``, ``JSONDecoder``, ``decode``). Matching is exact and
case-sensitive: ``load`` is not grounded by ``loads``.

A dotted name is grounded when its last part exists (``JSONDecoder.decode``,
``self.scan_once``): the part before is usually a module, a class or ``self`` that the source
reaches by import or context, while the last part is the thing the sentence is about.

Pure functions: no database, no LLM.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import keyword
import re
import threading
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Grounding",
    "check_grounding",
    "known_identifiers",
    "named_identifiers",
    "session_ratio",
]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(_IDENT)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
# A fenced block; one cut short by the answer's end counts when it names its language.
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```|^```[A-Za-z][^\n]*\n(.*)\Z", re.S | re.M)
_DOTTED = re.compile(rf"(?<![\w.]){_IDENT}(?:\.{_IDENT})+(?![\w(])")
_CALL = re.compile(rf"(?<![\w.])({_IDENT}(?:\.{_IDENT})*)\(")
_WORD = re.compile(rf"(?<![\w.]){_IDENT}(?![\w.]\w)")
_FILE_SUFFIXES = frozenset(
    "py pyi txt md rst json toml cfg ini yaml yml c h js ts html css csv ipynb".split()  # noqa: SIM905
)

# Words a description uses as prose even before a parenthesis or in a code span.
_ENGLISH = frozenset(
    """
    a an the and or not of to in on at by for from with without as is are was were be been
    being it its this that these those there their them they he she we you your our i me my
    do does did done has have had having can could may might must shall should will would
    if else then than when while where which who whom whose what why how all any both each
    few more most other some such no nor only own same so too very just also but about above
    after again against before below between during into out over through under until up down
    off once here further returns return raises raise yields yield takes given gives used
    using called value values object objects function functions method methods class classes
    module modules package packages file files folder folders parameter parameters argument
    arguments optional default defaults type types string strings number numbers list lists
    dict dicts tuple tuples none true false error errors exception exceptions result results
    name names data input output instance instances attribute attributes key keys item items
    example e g eg ie etc note see one two three first second last new old like via per
    """.split()  # noqa: SIM905
)
_BUILTINS = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_TEXT_TOKENS = frozenset(
    {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
)
_COMMON_CODE = frozenset({"self", "cls", "__init__", "__name__", "__main__"})
# The headings of the prompt itself (prompts.build_prompt), which a model may echo.
_PROMPT_WORDS = frozenset({"Path", "Labels", "Name", "Source", "Children", "Node"})


@dataclass(frozen=True, slots=True)
class Grounding:
    """The names a description uses, and those the node does not have."""

    named: tuple[str, ...] = ()
    ungrounded: tuple[str, ...] = ()

    @property
    def ratio(self) -> float | None:
        """Found ÷ named; ``None`` when the description names nothing (no evidence either
        way: such nodes are left out of a session's ratio, not counted as perfect)."""
        if not self.named:
            return None
        return (len(self.named) - len(self.ungrounded)) / len(self.named)


def _skip(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    if name in _BUILTINS or name in _COMMON_CODE or name in _PROMPT_WORDS:
        return True
    if name.lower() in _ENGLISH:
        return True
    if "." in name:
        parts = name.split(".")
        if parts[-1] in _FILE_SUFFIXES:  # decoder.py: a file, checked as its stem elsewhere
            return True
        return all(len(p) < 2 for p in parts) or (last in _BUILTINS and parts[0] in _BUILTINS)
    if len(set(name)) == 1 and name.isupper():  # YYYY, MM, DD: a format, not a name
        return True
    return len(name) < 2 and not name.isupper()


def _is_camel(word: str) -> bool:
    return any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)


def _is_snake(word: str) -> bool:
    return "_" in word.strip("_") or word.startswith("_")


def _prose_names(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    for m in _CALL.finditer(text):
        found.append((m.start(1), m[1]))
        taken.append(m.span(1))
    for m in _DOTTED.finditer(text):
        if free(*m.span()):
            found.append((m.start(), m[0]))
            taken.append(m.span())
    for m in _WORD.finditer(text):
        word = m[0]
        if free(*m.span()) and (_is_camel(word) or _is_snake(word)):
            found.append((m.start(), word))
    return [name for _, name in sorted(found)]


def _span_names(code: str) -> list[str]:
    """The names of a code span or block: its Python names (dotted names kept whole), not the
    words of its comments and strings; by a plain pattern when it is not Python."""
    names: list[str] = []
    tokens: list[tokenize.TokenInfo] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            tokens.append(tok)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        if len(tokens) < 2:  # not Python at all: by the plain pattern below
            tokens = []
    if tokens:
        for i, tok in enumerate(tokens):
            if tok.type != tokenize.NAME:
                continue
            before = tokens[i - 1] if i else None
            if before is not None and before.string == "." and names and before.end == tok.start:
                names[-1] += "." + tok.string
            else:
                names.append(tok.string)
        return names
    for m in re.finditer(rf"{_IDENT}(?:\.{_IDENT})*", code):
        if m.start() and code[m.start() - 1].isdigit():
            continue  # 1e10, 0x1f
        names.append(m[0])
    return names


def named_identifiers(description: str) -> list[str]:
    """The identifiers ``description`` names, in order of first mention, each once (see the
    module's docstring for what counts)."""
    names: list[str] = []
    rest: list[str] = []
    pos = 0
    spans = sorted(
        [(m.start(), m.end(), m[1] or m[2] or "") for m in _FENCE.finditer(description)]
        + [
            (m.start(), m.end(), m[2])
            for m in _CODE_SPAN.finditer(_FENCE.sub(lambda f: " " * len(f[0]), description))
        ]
    )
    for start, end, code in spans:
        if start < pos:
            continue
        rest.append(description[pos:start])
        names.extend(_span_names(code))
        pos = end
    rest.append(description[pos:])
    names.extend(_prose_names(" ".join(rest)))
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        name = name.strip(".")
        if name and name not in seen and not _skip(name):
            seen.add(name)
            out.append(name)
    return out


# What each source checked in this process holds, by digest (a re-run checks the same sources
# again; keyed by digest so that no source text is kept alive). Oldest out first.
_SEEN: dict[bytes, frozenset[str] | None] = {}
_SEEN_MAX = 4096
_seen_lock = threading.Lock()


def _python_identifiers(source: str) -> frozenset[str] | None:
    key = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    with _seen_lock:
        if key in _SEEN:
            return _SEEN[key]
    found = _tokenized_identifiers(source)
    with _seen_lock:
        if len(_SEEN) >= _SEEN_MAX:
            del _SEEN[next(iter(_SEEN))]
        _SEEN[key] = found
    return found


def _tokenized_identifiers(source: str) -> frozenset[str] | None:
    names: set[str] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
            elif tok.type in _TEXT_TOKENS:  # strings, comments, f-string parts (3.12+)
                names.update(_IDENT_RE.findall(tok.string))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return frozenset(names)


def _path_parts(path: str) -> set[str]:
    parts: set[str] = set()
    for segment in re.split(r"[/:]+", path):
        stem = segment
        suffix = segment.rsplit(".", 1)
        if len(suffix) == 2 and suffix[1] in _FILE_SUFFIXES:
            stem = suffix[0]
        parts.update(p for p in stem.split(".") if p)
    return parts


def known_identifiers(
    source: str | None, child_paths: Iterable[str] = (), node_path: str = ""
) -> frozenset[str]:
    """Every identifier the node has: those of its source, and the segments of its own path
    and its children's paths."""
    known: set[str] = set()
    if source:
        found = _python_identifiers(source)
        known |= found if found is not None else set(_IDENT_RE.findall(source))
    for path in (node_path, *child_paths):
        known |= _path_parts(path)
    return frozenset(known)


def check_grounding(
    description: str,
    source: str | None,
    child_paths: Iterable[str] = (),
    *,
    node_path: str = "",
) -> Grounding:
    """Which names of ``description`` the node does not have (exact, case-sensitive; a dotted
    name by its last part)."""
    named = named_identifiers(description)
    if not named:  # nothing to look up: the source is not read
        return Grounding((), ())
    known = known_identifiers(source, child_paths, node_path)
    missing = tuple(n for n in named if n.rsplit(".", 1)[-1] not in known)
    return Grounding(tuple(named), missing)


def session_ratio(groundings: Iterable[Grounding | None]) -> float | None:
    """Found ÷ named over every description of a session (each name counted once per
    description); ``None`` when none names anything."""
    named = found = 0
    for g in groundings:
        if g is None:
            continue
        named += len(g.named)
        found += len(g.named) - len(g.ungrounded)
    return found / named if named else None
