"""Stored documentation: read it as a DataFrame, or export it as a Markdown tree.

Documentation is a result, not session state: one ``DOCUMENTATION`` node per code node
(``(d:DOCUMENTATION)-[:DESCRIBES]->(n)``), written by the sessions that made it, kept by
every cleanup, removed only with its code node (``load_python_package`` of a changed tree).
"""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import read_queries as rq
from .checks import check_path
from .db import GraphDB
from .detection import resolve_schema
from .export_files import ExportDir
from .export_pages import assign_targets, build_pages, kind_of, render
from .schema import GraphSchema

__all__ = ["DOCUMENTATION_COLUMNS", "ExportWarning", "documentation", "export_markdown"]

DOCUMENTATION_COLUMNS = [
    "path",
    "key",
    "kind",
    "name",
    "labels",
    "tenant",
    "description",
    "model",
    "session_id",
    "updated_at",
    "truncated",
    "ungrounded",
    "grounded_ratio",
]


def _check_root(root_path: object) -> str:
    return check_path(root_path, "root_path").rstrip("/") or "/"


def _rows(db: GraphDB, root_path: str, schema: GraphSchema) -> list[dict[str, Any]]:
    """One row per documented code node of the tenant at or under ``root_path`` (where a
    code node has several documentation nodes, the keyed one)."""
    root = _check_root(root_path)
    params: dict[str, Any] = {"root_path": root, "folder_prefix": root + "/", **schema.params()}
    for k, sep in enumerate(schema.definition_separators):
        params["file_prefix" if k == 0 else f"file_prefix_{k}"] = root + sep
    rows = db.run_query(rq.documentation_query(schema), params)
    rows.sort(key=lambda r: (str(r["path"]), r["doc_key"] is None))
    seen: set[tuple[str, str]] = set()
    kept: list[dict[str, Any]] = []
    for r in rows:
        if (str(r["key"]), repr(r["tenant"])) not in seen:
            seen.add((str(r["key"]), repr(r["tenant"])))
            kept.append(r)
    return kept


def _tenant(schema: GraphSchema, values: object) -> str | None:
    if not schema.tenant or not isinstance(values, list):
        return None
    pairs = [(p, v) for (p, _), v in zip(schema.tenant, values, strict=False) if v is not None]
    return ", ".join(f"{p}={v}" for p, v in pairs) or None


def _names(value: object) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list | tuple) else None


def documentation(
    db: GraphDB, root_path: str, *, schema: GraphSchema | str | None = None
) -> pd.DataFrame:
    """One row per documented code node (of the tenant) at or under ``root_path``
    (``root/...``, ``root::...``; blarify's ``root#...``, ``root....``): path (its identity),
    key (what its documentation is keyed by), kind, name, labels, tenant, description, model,
    session_id, updated_at (UTC), ungrounded (the names the description uses that the code
    does not have; None before the check), grounded_ratio (found ÷ named; NaN when it names
    nothing), truncated (the answer was cut short: it is asked again on
    the next run). ``schema`` is detected when not given."""
    _check_root(root_path)  # before any query
    resolved = resolve_schema(db, schema)
    rows = [
        {
            "path": r["path"],
            "key": r["key"],
            "kind": kind_of(r["labels"]),
            "name": r["name"],
            "labels": ",".join(str(label) for label in r["labels"]),
            "tenant": _tenant(resolved, r["tenant"]),
            "description": r["description"],
            "model": r["model"],
            "truncated": r.get("truncated") is True,
            "ungrounded": _names(r.get("ungrounded")),
            "grounded_ratio": r.get("grounded_ratio"),
            "session_id": r["session_id"],
            "updated_at": (
                None
                if r["updated_at"] is None
                else datetime.fromtimestamp(int(r["updated_at"]) / 1000, UTC)
            ),
        }
        for r in _rows(db, root_path, resolved)
    ]
    frame = pd.DataFrame(rows, columns=DOCUMENTATION_COLUMNS)
    frame["grounded_ratio"] = frame["grounded_ratio"].astype("float64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------- export


class ExportWarning(UserWarning):
    """Some pages of an export got another name than their code's (a collision, or too long)."""


def export_markdown(
    db: GraphDB,
    root_path: str,
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    schema: GraphSchema | str | None = None,
) -> list[Path]:
    """Write the documentation under ``root_path`` as Markdown that mirrors the code.

    A folder becomes ``<folder>/index.md`` listing its subfolders and files; a file becomes
    ``<file>.md`` with its own description and a section per class and function (in source
    order), each linked from the folder index. Files and definitions are told apart by the
    schema (detected when not given). Returns the pages written.

    Safe to publish: descriptions cannot inject HTML, links or images (``markdown``), page
    names never collide and stay short (``export_pages``; a renamed page gives an
    ``ExportWarning``), and a link inside ``out_dir`` is never followed (``export_files``).
    A folder that is not empty is refused (``ExportRefusedError``) unless ``force=True``;
    then only the pages an earlier export wrote there (its ``.blarify-export.json``) are
    replaced, or removed when gone from the graph, and nothing else is touched.
    """
    root = _check_root(root_path)
    resolved = resolve_schema(db, schema)
    rows = _rows(db, root, resolved)
    if not rows:
        raise LookupError(
            f"no stored documentation under {root!r}: document it first (process_node in "
            "Python, `blarify-lab process` in a shell) "
            "(with save_documentation=True, the default)"
        )
    pages = build_pages(root, rows, resolved)
    target = ExportDir.open(Path(out_dir).expanduser(), force=force)
    try:
        targets, renamed = assign_targets(root, pages, target.taken)
        files = {
            targets[path]: render(root, page, pages, targets)
            for path, page in sorted(pages.items())
        }
    except BaseException:
        target.close()
        raise
    if renamed:
        shown = ", ".join(renamed[:3]) + (", ..." if len(renamed) > 3 else "")
        warnings.warn(
            f"{len(renamed)} page(s) named with a hash suffix (their names collide or are too "
            f"long for a file system): {shown}",
            ExportWarning,
            stacklevel=2,
        )
    return target.write(files)
