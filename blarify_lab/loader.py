"""Build a code graph from a Python source tree with the standard library's ``ast``.

FOLDER, FILE, CLASS and FUNCTION nodes carry ``path``, ``name``, ``text`` (their source) and line
numbers; ``CONTAINS`` edges give the hierarchy and ``CALLS`` edges link functions to the
functions they call, where the callee's name is unambiguous within the package.
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import queries as q
from .db import GraphDB

__all__ = ["LoadedPackage", "load_python_package"]

T = TypeVar("T")
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache", ".tox"}


@dataclass
class LoadedPackage:
    """What ``load_python_package`` wrote: the root's path and counts per label and edge type."""

    root_path: str
    nodes: dict[str, int] = field(default_factory=dict[str, int])
    edges: dict[str, int] = field(default_factory=dict[str, int])
    skipped_files: list[str] = field(default_factory=list[str])

    def __repr__(self) -> str:
        nodes = ", ".join(f"{v} {k}" for k, v in self.nodes.items())
        edges = ", ".join(f"{v} {k}" for k, v in self.edges.items())
        return f"LoadedPackage(root_path={self.root_path!r}: {nodes}; {edges})"


@dataclass
class _Def:
    path: str
    name: str
    cls: str | None
    node: ast.FunctionDef | ast.AsyncFunctionDef


def load_python_package(
    db: GraphDB, path: str | os.PathLike[str], *, prefix: str | None = None
) -> LoadedPackage:
    """Load the Python package (or single file) at ``path`` into ``db``; returns what was made.

    Node paths start with ``prefix`` (default ``/<name of the folder or file>``); classes and
    functions are ``<file path>::<Qualified.name>``.
    """
    src = Path(path).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"no such package or file: {src}")
    root_path = prefix.rstrip("/") if prefix else "/" + src.name
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    contains: list[tuple[str, str]] = []
    defs: list[_Def] = []
    skipped: list[str] = []

    def add_file(file: Path, node_path: str) -> None:
        try:
            text = file.read_text(encoding="utf-8")
            tree = ast.parse(text, filename=str(file))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            skipped.append(str(file))
            return
        rows["FILE"].append(
            {"path": node_path, "name": file.name, "text": text, "start_line": 1,
             "end_line": len(text.splitlines())}
        )  # fmt: skip
        _add_defs(tree.body, text, node_path, node_path, None, "", rows, contains, defs)

    if src.is_file():
        add_file(src, root_path)
    else:
        rows["FOLDER"].append({"path": root_path, "name": src.name})
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            here = Path(dirpath)
            rel = here.relative_to(src).as_posix()
            folder_path = root_path if rel == "." else f"{root_path}/{rel}"
            for d in dirnames:
                child = f"{folder_path}/{d}"
                rows["FOLDER"].append({"path": child, "name": d})
                contains.append((folder_path, child))
            for f in sorted(filenames):
                if f.endswith(".py"):
                    file_path = f"{folder_path}/{f}"
                    contains.append((folder_path, file_path))
                    add_file(here / f, file_path)

    calls = _resolve_calls(defs)
    ids: dict[str, int] = {}
    result = LoadedPackage(root_path=root_path, skipped_files=skipped)
    for label, label_rows in rows.items():
        for chunk in _chunks(label_rows, 2000):
            for rec in db.run_query(q.create_nodes_query(label), {"rows": chunk}):
                ids[str(rec["path"])] = int(rec["node_id"])
        result.nodes[label] = len(label_rows)
    for rel, pairs in (("CONTAINS", contains), ("CALLS", calls)):
        known = [(ids[a], ids[b]) for a, b in pairs if a in ids and b in ids]
        for chunk in _chunks(known, 5000):
            db.run_query(
                q.create_edges_query(rel),
                {"sources": [a for a, _ in chunk], "targets": [b for _, b in chunk]},
            )
        result.edges[rel] = len(known)
    return result


def _add_defs(
    body: list[ast.stmt],
    text: str,
    file_path: str,
    parent_path: str,
    cls: str | None,
    qual: str,
    rows: dict[str, list[dict[str, Any]]],
    contains: list[tuple[str, str]],
    defs: list[_Def],
) -> None:
    for stmt in body:
        if isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{qual}{stmt.name}"
            node_path = f"{file_path}::{name}"
            label = "CLASS" if isinstance(stmt, ast.ClassDef) else "FUNCTION"
            rows[label].append(
                {
                    "path": node_path,
                    "name": stmt.name,
                    "text": ast.get_source_segment(text, stmt) or "",
                    "start_line": stmt.lineno,
                    "end_line": stmt.end_lineno or stmt.lineno,
                }
            )
            contains.append((parent_path, node_path))
            if isinstance(stmt, ast.ClassDef):
                _add_defs(stmt.body, text, file_path, node_path, stmt.name, f"{name}.", rows,
                          contains, defs)  # fmt: skip
            else:
                defs.append(_Def(node_path, stmt.name, cls, stmt))
                _add_defs(stmt.body, text, file_path, node_path, None, f"{name}.", rows,
                          contains, defs)  # fmt: skip


def _resolve_calls(defs: list[_Def]) -> list[tuple[str, str]]:
    """Caller -> callee pairs, kept only where the callee is certain.

    ``name(...)`` resolves to the one module-level function of that name in the package;
    ``self.name(...)`` / ``cls.name(...)`` to the caller's own class's method, and
    ``Class.name(...)`` to that class's method. Calls on other objects are not guessed.
    """
    by_name: dict[str, list[_Def]] = defaultdict(list)
    for d in defs:
        by_name[d.name].append(d)
    pairs: set[tuple[str, str]] = set()
    for d in defs:
        for node in ast.walk(d.node):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            target: _Def | None = None
            if isinstance(func, ast.Name):
                candidates = [c for c in by_name.get(func.id, []) if c.cls is None]
                target = candidates[0] if len(candidates) == 1 else None
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                receiver = func.value.id
                owner = d.cls if receiver in ("self", "cls") else receiver
                own = [
                    c for c in by_name.get(func.attr, []) if c.cls is not None and c.cls == owner
                ]
                target = own[0] if len(own) == 1 else None
            if target is not None:
                pairs.add((d.path, target.path))
    return sorted(pairs)


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
