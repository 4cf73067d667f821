"""Build a code graph from a Python source tree with the standard library's ``ast``.

FOLDER, FILE, CLASS and FUNCTION nodes carry ``path``, ``name``, ``text`` (their source), line
numbers and a ``content_hash``; ``CONTAINS`` edges give the hierarchy and ``CALLS`` edges link
functions to the functions they call, where the callee's name is unambiguous within the package.

Loading is idempotent and incremental: loading a root that is already in the graph updates it in
place, keyed by ``path`` (see ``load_python_package``).

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
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import queries as q
from .db import GraphDB

__all__ = ["PROGRESS_MIN_FILES", "LoadedPackage", "load_python_package"]

T = TypeVar("T")
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache", ".tox"}
_EDGE_TYPES = ("CONTAINS", "CALLS")
_NODE_BATCH = 2000
_EDGE_BATCH = 5000
_NEWLINE = re.compile(r"\r\n|\r|\n")  # the line ends ``ast`` counts (not form feeds)

PROGRESS_MIN_FILES = 50
"""``progress=None`` shows a bar from this many Python files on."""

_DefNode = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class LoadedPackage:
    """What ``load_python_package`` did.

    ``nodes`` and ``edges`` count, per label and per edge type, what the package has in the graph
    after the load (on a first load, what was written). ``added``, ``changed``, ``removed`` and
    ``unchanged`` list node paths, sorted; a node whose label changed (a function became a class)
    is both removed and added. ``skipped_files`` lists the files that could not be loaded, and
    ``skipped_reasons`` says why for each (``syntax error ...``, ``not UTF-8``, ...); what the
    graph already had for a skipped file is kept as it was, and not counted in ``nodes``.
    """

    root_path: str
    nodes: dict[str, int] = field(default_factory=dict[str, int])
    edges: dict[str, int] = field(default_factory=dict[str, int])
    skipped_files: list[str] = field(default_factory=list[str])
    added: list[str] = field(default_factory=list[str])
    changed: list[str] = field(default_factory=list[str])
    removed: list[str] = field(default_factory=list[str])
    unchanged: list[str] = field(default_factory=list[str])
    skipped_reasons: dict[str, str] = field(default_factory=dict[str, str])

    def __repr__(self) -> str:
        nodes = ", ".join(f"{v} {k}" for k, v in self.nodes.items())
        edges = ", ".join(f"{v} {k}" for k, v in self.edges.items())
        return f"LoadedPackage(root_path={self.root_path!r}: {nodes}; {edges})"

    def diff_summary(self) -> str:
        """``"3 added, 1 changed, 0 removed, 120 unchanged"``."""
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged"
        )


@dataclass
class _Def:
    """A FUNCTION node, for call resolution."""

    path: str
    name: str
    cls: str | None


@dataclass
class _Tree:
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


def load_python_package(
    db: GraphDB,
    path: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    progress: bool | None = None,
) -> LoadedPackage:
    """Load the Python package (or single file) at ``path`` into ``db``; returns what changed.

    Node paths start with ``prefix`` (default ``/<name of the folder or file>``); classes and
    functions are ``<file path>::<Qualified.name>`` (the module docstring gives the rule that
    keeps them unique). Files that cannot be read or parsed are skipped and reported; what the
    graph already had for such a file (its nodes, their edges and documentation) is kept as it
    was, so that a file saved half-edited does not lose its documentation.

    A root already in the graph is updated in place, keyed by ``path``: every code node at the
    root or under it (``<root>/...``, ``<root>::...``) that the tree no longer has is deleted
    with its edges and the DOCUMENTATION nodes that describe it; changed nodes get their new
    ``text``, line numbers and ``content_hash``; unchanged nodes are not written; new ones are
    created. The ``CONTAINS`` and ``CALLS`` edges leaving the package's nodes are diffed against
    the tree's, so loading the same tree twice writes nothing. Edges from or to nodes outside
    the root are left alone. The load is not one transaction: if it is interrupted, loading
    again completes it.

    ``progress``: ``None`` shows a tqdm bar (on stderr; a widget in Jupyter) when the tree has at
    least ``PROGRESS_MIN_FILES`` Python files, ``True`` always, ``False`` never.
    """
    if prefix is not None:
        try:
            q.validate_path(prefix, "prefix")
        except ValueError as err:
            raise ValueError(f"invalid prefix: {err}") from None
    src = Path(path).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"no such package or file: {src}")
    root_path = prefix.rstrip("/") if prefix is not None else "/" + src.name
    if not root_path:
        raise ValueError(f"invalid prefix {prefix!r}: give a path such as /mypkg")
    tree = _Tree()
    files: list[tuple[Path, str, str]] = []  # (file, its node path, its parent's node path)
    if src.is_file():
        files.append((src, root_path, ""))
    else:
        tree.add("FOLDER", {"path": root_path, "name": src.name}, None)
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            here = Path(dirpath)
            rel = here.relative_to(src).as_posix()
            folder_path = root_path if rel == "." else f"{root_path}/{rel}"
            for d in dirnames:
                tree.add("FOLDER", {"path": f"{folder_path}/{d}", "name": d}, folder_path)
            files.extend(
                (here / f, f"{folder_path}/{f}", folder_path)
                for f in sorted(filenames)
                if f.endswith(".py")
            )

    show = progress if progress is not None else len(files) >= PROGRESS_MIN_FILES
    bar: Any = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc=f"load {root_path}", unit="file", file=sys.stderr)
    try:
        for file, node_path, parent in files:
            _add_file(tree, file, node_path, parent or None)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.set_postfix_str("writing", refresh=True)
        return _write(db, root_path, tree)
    finally:
        if bar is not None:
            bar.close()


# ------------------------------------------------------------------------------------ parsing


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


def _add_file(tree: _Tree, file: Path, node_path: str, parent: str | None) -> None:
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
    tree: _Tree,
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
    tree: _Tree, function: ast.AST, enclosing: tuple[_Def, ...], functions: dict[int, _Def]
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


def _resolve_calls(tree: _Tree) -> list[tuple[str, str]]:
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


# ------------------------------------------------------------------------------------ writing


def _write(db: GraphDB, root_path: str, tree: _Tree) -> LoadedPackage:
    calls = _resolve_calls(tree)
    result = LoadedPackage(
        root_path=root_path,
        skipped_files=list(tree.skipped),
        skipped_reasons=dict(tree.skipped),
    )
    for label in tree.labels.values():
        result.nodes[label] = result.nodes.get(label, 0) + 1

    # Diff the nodes: existing ones by path, one kept per path (the first with the right label).
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in db.run_query(q.code_nodes_under_root_query(), {"root": root_path}):
        found[str(rec["path"])].append(rec)
    ids: dict[str, int] = {}
    doomed: list[int] = []
    changed_ids: list[int] = []
    changed_rows: list[dict[str, Any]] = []
    held = set(tree.skipped_nodes)
    held_members = tuple(f"{p}::" for p in held)
    for node_path, recs in found.items():
        label = tree.labels.get(node_path)
        if label is None and (node_path in held or node_path.startswith(held_members)):
            continue  # a file that does not parse now keeps what the graph had for it
        keep = next((r for r in recs if label is not None and label in r["labels"]), None)
        doomed.extend(int(r["node_id"]) for r in recs if r is not keep)
        if keep is None:
            result.removed.append(node_path)
            continue
        ids[node_path] = int(keep["node_id"])
        row = tree.rows[node_path]
        if keep["content_hash"] == row["content_hash"]:
            result.unchanged.append(node_path)
        else:
            result.changed.append(node_path)
            changed_ids.append(ids[node_path])
            changed_rows.append(row)
    for chunk in _chunks(doomed, _NODE_BATCH):
        db.run_query(q.delete_documentation_query(), {"node_ids": chunk})
        db.run_query(q.delete_nodes_query(), {"node_ids": chunk})
    for k in range(0, len(changed_ids), _NODE_BATCH):
        db.run_query(
            q.update_nodes_query(),
            {
                "node_ids": changed_ids[k : k + _NODE_BATCH],
                "rows": changed_rows[k : k + _NODE_BATCH],
            },
        )
    existing_ids = list(ids.values())
    new_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node_path, label in tree.labels.items():
        if node_path not in ids:
            new_rows[label].append(tree.rows[node_path])
            result.added.append(node_path)
    for label, rows in new_rows.items():
        for chunk in _chunks(rows, _NODE_BATCH):
            for rec in db.run_query(q.create_nodes_query(label), {"rows": chunk}):
                ids[str(rec["path"])] = int(rec["node_id"])

    # Diff the edges leaving the package's nodes that existed before (new ones have none).
    package_ids = set(ids.values())
    for rel, pairs in (("CONTAINS", tree.contains), ("CALLS", calls)):
        wanted = {(ids[a], ids[b]) for a, b in pairs if a in ids and b in ids}
        have: Counter[tuple[int, int]] = Counter()
        for chunk in _chunks(existing_ids, _EDGE_BATCH):
            for rec in db.run_query(q.outgoing_edges_query(rel), {"node_ids": chunk}):
                source = int(rec["source"])
                have.update((source, int(t)) for t in rec["targets"] if int(t) in package_ids)
        # parallel copies of a wanted edge are all deleted, then one is created again
        drop = sorted(e for e, n in have.items() if e not in wanted or n > 1)
        make = sorted(e for e in wanted if have[e] != 1)
        _write_edges(db, q.delete_edges_query(rel), drop)
        _write_edges(db, q.create_edges_query(rel), make)
        result.edges[rel] = len(wanted)
    for names in (result.added, result.changed, result.removed, result.unchanged):
        names.sort()
    return result


def _write_edges(db: GraphDB, query: str, edges: Iterable[tuple[int, int]]) -> None:
    for chunk in _chunks(list(edges), _EDGE_BATCH):
        db.run_query(query, {"sources": [a for a, _ in chunk], "targets": [b for _, b in chunk]})


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
