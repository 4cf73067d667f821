"""Load a Python source tree into a code graph: ``load_python_package`` and ``LoadedPackage``.

FOLDER, FILE, CLASS and FUNCTION nodes carry ``path``, ``name``, ``text`` (their source), line
numbers and a ``content_hash``; ``CONTAINS`` edges give the hierarchy and ``CALLS`` edges link
functions to the functions they call, where the callee's name is unambiguous within the package.

Loading is idempotent and incremental: loading a root that is already in the graph updates it in
place, keyed by ``path`` (see ``load_python_package``).

What the graph should hold is read by ``pysource`` (the ``ast`` extraction, which also gives
the rule that keeps paths unique); this module diffs it against the graph and writes the
difference.
"""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import queries as q
from . import read_queries as rq
from .checks import check_path
from .db import GraphDB
from .errors import SourceConflictError
from .pysource import CodeTree, add_file, resolve_calls

__all__ = ["PROGRESS_MIN_FILES", "LoadedPackage", "load_python_package"]

T = TypeVar("T")
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache", ".tox"}
_EDGE_TYPES = ("CONTAINS", "CALLS")
_NODE_BATCH = 2000
_EDGE_BATCH = 5000

PROGRESS_MIN_FILES = 50
"""``progress=None`` shows a bar from this many Python files on."""


@dataclass
class LoadedPackage:
    """What ``load_python_package`` did.

    ``nodes`` and ``edges`` count, per label and per edge type, what the package has in the graph
    after the load (on a first load, what was written). ``added``, ``changed``, ``removed`` and
    ``unchanged`` list node paths, sorted; a node whose label changed (a function became a class)
    is both removed and added. ``skipped_files`` lists the files that could not be loaded, and
    ``skipped_reasons`` says why for each (``syntax error ...``, ``not UTF-8``, ...); what the
    graph already had for a skipped file is kept as it was, and not counted in ``nodes``.
    ``source_dir`` is the directory (or file) loaded, absolute and resolved, as remembered on
    the root node.
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
    source_dir: str = ""

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


def load_python_package(
    db: GraphDB,
    path: str | os.PathLike[str],
    *,
    prefix: str | None = None,
    progress: bool | None = None,
    replace: bool = False,
) -> LoadedPackage:
    """Load the Python package (or single file) at ``path`` into ``db``; returns what changed.

    Node paths start with ``prefix`` (default ``/<name of the folder or file>``); classes and
    functions are ``<file path>::<Qualified.name>`` (``blarify_lab.pysource`` gives the rule
    that keeps them unique). Files that cannot be read or parsed are skipped and reported; what the
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

    The root node remembers the directory it was loaded from (``source_dir``, absolute and
    resolved). A load from another directory that would delete documented nodes raises
    ``SourceConflictError`` before writing anything (a package with the same folder name would
    otherwise replace the first and lose its documentation), unless ``replace=True``. A root
    loaded before the directory was remembered is treated as another tree when documented
    nodes would go: confirm once with ``replace=True``. Reloading the same directory is an
    ordinary incremental load, deletions included.

    ``progress``: ``None`` shows a tqdm bar (on stderr; a widget in Jupyter) when the tree has at
    least ``PROGRESS_MIN_FILES`` Python files, ``True`` always, ``False`` never.
    """
    if prefix is not None:
        try:
            check_path(prefix, "prefix")
        except ValueError as err:
            raise ValueError(f"invalid prefix: {err}") from None
    src = Path(path).expanduser().resolve()
    if not src.exists():
        raise FileNotFoundError(f"no such package or file: {src}")
    root_path = prefix.rstrip("/") if prefix is not None else "/" + src.name
    if not root_path:
        raise ValueError(f"invalid prefix {prefix!r}: give a path such as /mypkg")
    tree = CodeTree()
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
            add_file(tree, file, node_path, parent or None)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.set_postfix_str("writing", refresh=True)
        return _write(db, root_path, tree, str(src), replace=replace)
    finally:
        if bar is not None:
            bar.close()


# ------------------------------------------------------------------------------------ writing


def _write(
    db: GraphDB, root_path: str, tree: CodeTree, source_dir: str, *, replace: bool
) -> LoadedPackage:
    calls = resolve_calls(tree)
    result = LoadedPackage(
        root_path=root_path,
        skipped_files=list(tree.skipped),
        skipped_reasons=dict(tree.skipped),
        source_dir=source_dir,
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
    recorded = next((r["source_dir"] for r in found.get(root_path, ()) if r["source_dir"]), None)
    if doomed and not replace and recorded != source_dir:
        _refuse_foreign_removal(db, root_path, source_dir, recorded, doomed)
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

    kept_root = ids.get(root_path)
    root_source = next(
        (r["source_dir"] for r in found.get(root_path, ()) if int(r["node_id"]) == kept_root),
        None,
    )
    if kept_root is not None and root_source != source_dir:
        db.run_query(
            q.update_nodes_query(), {"node_ids": [kept_root], "rows": [{"source_dir": source_dir}]}
        )

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


def _refuse_foreign_removal(
    db: GraphDB, root_path: str, source_dir: str, recorded: str | None, doomed: list[int]
) -> None:
    """Raise ``SourceConflictError`` when nodes to delete have stored documentation: the
    tree loaded is not (known to be) the one the root came from."""
    documented: set[str] = set()
    for chunk in _chunks(doomed, _NODE_BATCH):
        rows = db.run_query(rq.nodes_contents_query(), {"node_ids": chunk})
        documented.update(str(r["path"]) for r in rows if r["doc_description"] is not None)
    if documented:
        raise SourceConflictError(
            root_path,
            source_dir=source_dir,
            recorded_source_dir=recorded,
            removed=len(doomed),
            documented=sorted(documented),
        )


def _write_edges(db: GraphDB, query: str, edges: Iterable[tuple[int, int]]) -> None:
    for chunk in _chunks(list(edges), _EDGE_BATCH):
        db.run_query(query, {"sources": [a for a, _ in chunk], "targets": [b for _, b in chunk]})


def _chunks(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
