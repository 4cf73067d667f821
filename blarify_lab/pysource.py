"""What a Python source tree should look like as a code graph, read with ``ast`` (no database).

``CodeTree`` holds the FOLDER, FILE, CLASS and FUNCTION rows (``path``, ``name``, ``text`` (their
source), line numbers and a ``content_hash``) and the ``CONTAINS`` pairs that give the
hierarchy; ``add_file`` reads one file into it and ``resolve_calls`` gives the ``CALLS`` pairs,
linking functions to the functions they call where the callee's name is unambiguous within the
package.

Paths are unique (one node per path, every node's parent exists), by this rule:

* The definitions of a body (a module, a class body, a function body) are the ``class``, ``def``
  and ``async def`` statements directly in it, and those inside its compound statements
  (``if``/``elif``/``else``, ``try``/``except``/``else``/``finally``, ``with``, ``for``,
  ``while``, ``match``), at any depth, but never those inside another definition: those belong
  to that definition's body. So ``if sys.version_info >= ...: def f`` and
  ``try: ... except ImportError: def f`` are loaded, as children of the module or class.
* When a body defines the same name more than once, the **last** definition in source order
  wins, as in straight-line Python: ``@overload`` stubs give way to the implementation, an
  ``if``/``else`` pair to its ``else`` branch, a ``try``/``except ImportError`` pair to the
  fallback, a method redefined in its class to the later one. The earlier ones are dropped, with
  everything defined inside them; a class and a function of the same name count as the same
  name.

Text is sliced from each file once split into line offsets, so a load is linear in the size of
the source.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CodeTree", "add_file", "resolve_calls"]

_NEWLINE = re.compile(r"\r\n|\r|\n")  # the line ends ``ast`` counts (not form feeds)

_DefNode = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _Def:
    """A FUNCTION node, for call resolution."""

    path: str
    name: str
    cls: str | None


@dataclass
class CodeTree:
    """What the source tree should look like in the graph."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    labels: dict[str, str] = field(default_factory=dict[str, str])
    contains: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    defs: list[_Def] = field(default_factory=list[_Def])
    # (caller, kind, a, b): kind "name" calls ``a(...)``; kind "attr" calls ``a.b(...)``
    calls: list[tuple[_Def, str, str, str]] = field(
        default_factory=list[tuple[_Def, str, str, str]]
    )
    skipped: dict[str, str] = field(default_factory=dict[str, str])
    skipped_nodes: list[str] = field(default_factory=list[str])  # node paths of skipped files

    def skip(self, file: Path, node_path: str, reason: str) -> None:
        self.skipped[str(file)] = reason
        self.skipped_nodes.append(node_path)

    def add(self, label: str, row: dict[str, Any], parent: str | None) -> None:
        row["content_hash"] = _content_hash(label, row)
        self.rows[row["path"]] = row
        self.labels[row["path"]] = label
        if parent is not None:
            self.contains.append((parent, row["path"]))


class _Source:
    """A file's text split into line offsets once, sliced by ``ast`` positions.

    ``ast`` columns count UTF-8 bytes; a line that is not ASCII is converted when sliced.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]

    def offset(self, lineno: int, col: int) -> int:
        start = self.starts[lineno - 1]
        if col == 0:
            return start
        end = self.starts[lineno] if lineno < len(self.starts) else len(self.text)
        line = self.text[start:end]
        if line.isascii():
            return start + col
        return start + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))

    def segment(self, node: ast.stmt) -> str:
        """What ``ast.get_source_segment(text, node)`` returns, in time linear in the result."""
        end_lineno = node.end_lineno if node.end_lineno is not None else node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else 0
        return self.text[
            self.offset(node.lineno, node.col_offset) : self.offset(end_lineno, end_col)
        ]


def add_file(tree: CodeTree, file: Path, node_path: str, parent: str | None) -> None:
    try:
        text = file.read_text(encoding="utf-8")
        module = ast.parse(text, filename=str(file))
    except UnicodeDecodeError:
        tree.skip(file, node_path, "not UTF-8")
        return
    except SyntaxError as err:
        tree.skip(file, node_path, f"syntax error: {err.msg} (line {err.lineno})")
        return
    except (ValueError, RecursionError, MemoryError, OSError) as err:
        tree.skip(file, node_path, f"cannot parse: {type(err).__name__}: {err}")
        return
    tree.add(
        "FILE",
        {"path": node_path, "name": file.name, "text": text, "start_line": 1,
         "end_line": len(text.splitlines())},
        parent,
    )  # fmt: skip
    functions: dict[int, _Def] = {}
    outermost: list[tuple[ast.AST, _Def]] = []
    _add_defs(tree, _Source(text), module.body, node_path, node_path, None, "", functions,
              outermost)  # fmt: skip
    for function, d in outermost:
        _collect_calls(tree, function, (d,), functions)


def _definitions(body: list[ast.stmt]) -> list[_DefNode]:
    """The definitions a body binds, in source order; of several of one name, the last only."""
    found: list[_DefNode] = []
    _find_definitions(body, found)
    last = {d.name: d for d in found}
    return [d for d in found if last[d.name] is d]


def _find_definitions(body: list[ast.stmt], found: list[_DefNode]) -> None:
    for stmt in body:
        if isinstance(stmt, _DefNode):
            found.append(stmt)
        elif isinstance(stmt, ast.If | ast.For | ast.AsyncFor | ast.While):
            _find_definitions(stmt.body, found)
            _find_definitions(stmt.orelse, found)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            _find_definitions(stmt.body, found)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            _find_definitions(stmt.body, found)
            for handler in stmt.handlers:
                _find_definitions(handler.body, found)
            _find_definitions(stmt.orelse, found)
            _find_definitions(stmt.finalbody, found)
        elif isinstance(stmt, ast.Match):
            for case in stmt.cases:
                _find_definitions(case.body, found)


def _add_defs(
    tree: CodeTree,
    source: _Source,
    body: list[ast.stmt],
    file_path: str,
    parent_path: str,
    cls: str | None,
    qual: str,
    functions: dict[int, _Def],
    outermost: list[tuple[ast.AST, _Def]] | None,
) -> None:
    """Add the definitions of ``body``; ``outermost`` (None inside a function) collects the
    functions that are in no other function, with their syntax, for ``_collect_calls``."""
    for stmt in _definitions(body):
        name = f"{qual}{stmt.name}"
        node_path = f"{file_path}::{name}"
        label = "CLASS" if isinstance(stmt, ast.ClassDef) else "FUNCTION"
        tree.add(
            label,
            {
                "path": node_path,
                "name": stmt.name,
                "text": source.segment(stmt),
                "start_line": stmt.lineno,
                "end_line": stmt.end_lineno or stmt.lineno,
            },
            parent_path,
        )
        if isinstance(stmt, ast.ClassDef):
            _add_defs(tree, source, stmt.body, file_path, node_path, stmt.name, f"{name}.",
                      functions, outermost)  # fmt: skip
        else:
            d = _Def(node_path, stmt.name, cls)
            tree.defs.append(d)
            functions[id(stmt)] = d
            if outermost is not None:
                outermost.append((stmt, d))
            _add_defs(tree, source, stmt.body, file_path, node_path, None, f"{name}.",
                      functions, None)  # fmt: skip


# syntax that holds no call: not worth a visit
_NO_CALLS = (
    ast.Name, ast.Constant, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
    ast.alias, ast.Pass, ast.Break, ast.Continue, ast.Import, ast.ImportFrom, ast.Global,
    ast.Nonlocal,
)  # fmt: skip


def _collect_calls(
    tree: CodeTree, function: ast.AST, enclosing: tuple[_Def, ...], functions: dict[int, _Def]
) -> None:
    """Every call in ``function`` (its decorators and defaults too), once per FUNCTION node it
    is in: the innermost one and those around it (``enclosing`` ends with ``function``'s own).

    Each syntax node is visited once: a nested function is walked by its own call.
    """
    stack: list[ast.AST] = [function]
    while stack:
        node = stack.pop()
        for field_name in node._fields:
            value = getattr(node, field_name, None)
            children = value if isinstance(value, list) else (value,)
            for child in children:
                if not isinstance(child, ast.AST) or isinstance(child, _NO_CALLS):
                    continue
                inner = functions.get(id(child))
                if inner is not None:
                    _collect_calls(tree, child, (*enclosing, inner), functions)
                    continue
                if isinstance(child, ast.Call):
                    func = child.func
                    if isinstance(func, ast.Name):
                        tree.calls.extend((d, "name", func.id, "") for d in enclosing)
                    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                        receiver = func.value.id
                        tree.calls.extend((d, "attr", receiver, func.attr) for d in enclosing)
                stack.append(child)


def resolve_calls(tree: CodeTree) -> list[tuple[str, str]]:
    """Caller -> callee pairs, kept only where the callee is certain.

    ``name(...)`` resolves to the one function of that name in the package that is not a
    method; ``self.name(...)`` / ``cls.name(...)`` to the caller's own class's method, and
    ``Class.name(...)`` to that class's method. Calls on other objects are not guessed. A call
    inside a nested function counts for the functions around it too.
    """
    plain: dict[str, list[_Def]] = defaultdict(list)
    methods: dict[tuple[str, str], list[_Def]] = defaultdict(list)
    for d in tree.defs:
        if d.cls is None:
            plain[d.name].append(d)
        else:
            methods[(d.cls, d.name)].append(d)
    pairs: set[tuple[str, str]] = set()
    for caller, kind, a, b in tree.calls:
        if kind == "name":
            candidates = plain.get(a, [])
        else:
            owner = caller.cls if a in ("self", "cls") else a
            candidates = methods.get((owner, b), []) if owner is not None else []
        if len(candidates) == 1:
            pairs.add((caller.path, candidates[0].path))
    return sorted(pairs)


def _content_hash(label: str, row: dict[str, Any]) -> str:
    parts = [label, row["name"], str(row.get("start_line")), str(row.get("end_line"))]
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(str(row.get("text", "")).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
