"""Stored documentation: read it as a DataFrame, or export it as a Markdown tree.

Documentation is a result, not session state: one ``DOCUMENTATION`` node per code node
(``(d:DOCUMENTATION)-[:DESCRIBES]->(n)``), written by the sessions that made it, kept by
every cleanup, removed only with its code node (``load_python_package`` of a changed tree).
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from . import queries as q
from .checks import check_path
from .db import GraphDB

__all__ = ["DOCUMENTATION_COLUMNS", "documentation", "export_markdown"]

DOCUMENTATION_COLUMNS = [
    "path",
    "labels",
    "description",
    "model",
    "session_id",
    "updated_at",
    "truncated",
]


def _check_root(root_path: object) -> str:
    return check_path(root_path, "root_path").rstrip("/") or "/"


def _rows(db: GraphDB, root_path: str) -> list[dict[str, Any]]:
    root = _check_root(root_path)
    params = {"root_path": root, "folder_prefix": root + "/", "file_prefix": root + "::"}
    return db.run_query(q.documentation_query(), params)


def documentation(db: GraphDB, root_path: str) -> pd.DataFrame:
    """One row per documented code node at or under ``root_path`` (``root/...`` and
    ``root::...``): path, labels, description, model, session_id, updated_at (UTC), truncated
    (the answer was cut short: it is asked again on the next run)."""
    rows = [
        {
            "path": r["path"],
            "labels": ",".join(str(label) for label in r["labels"]),
            "description": r["description"],
            "model": r["model"],
            "truncated": r.get("truncated") is True,
            "session_id": r["session_id"],
            "updated_at": (
                None
                if r["updated_at"] is None
                else datetime.fromtimestamp(int(r["updated_at"]) / 1000, UTC)
            ),
        }
        for r in _rows(db, root_path)
    ]
    frame = pd.DataFrame(rows, columns=DOCUMENTATION_COLUMNS)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------- export


@dataclass
class _Page:
    """One Markdown page: a folder's index or a file with its classes and functions."""

    path: str  # the code path it documents
    kind: str  # "folder" or "file"
    description: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    children: list[str] = field(default_factory=list[str])


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    """A name as Markdown text: ``__init__`` stays ``__init__``, not a bold "init"."""
    return _MARKDOWN.sub(r"\\\1", text)


def _file_name(part: str) -> str:
    """A path segment as a safe file name, one name per segment: every character outside
    ``[A-Za-z0-9._-]`` is percent-encoded (``a b`` is ``a%20b``, never ``a_b``'s page), and
    ``.`` / ``..`` are encoded whole."""
    if part in (".", ".."):
        return part.replace(".", "%2E")
    return _UNSAFE.sub(lambda m: quote(m.group(0), safe=""), part) or "%00"


def export_markdown(db: GraphDB, root_path: str, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the documentation under ``root_path`` as Markdown that mirrors the code.

    A folder becomes ``<folder>/index.md`` listing its subfolders and files; a file becomes
    ``<file>.md`` with its own description and a section per class and function (in source
    order), each linked from the folder index. Returns the pages written.
    """
    root = _check_root(root_path)
    rows = _rows(db, root)
    if not rows:
        raise LookupError(
            f"no stored documentation under {root!r}: document it first (process_node in "
            "Python, `blarify-lab process` in a shell) "
            "(with save_documentation=True, the default)"
        )
    pages: dict[str, _Page] = {}
    for r in rows:
        path = str(r["path"])
        labels = {str(label) for label in r["labels"]}
        if "::" in path:
            file_path = path.split("::", 1)[0]
            page = pages.setdefault(file_path, _Page(file_path, "file"))
            page.entries.append(r)
        else:
            kind = "folder" if "FOLDER" in labels else "file"
            page = pages.setdefault(path, _Page(path, kind))
            page.kind = kind
            page.description = r["description"]
    for path in sorted(pages):
        parent = posixpath.dirname(path)
        if path != root and parent in pages:
            pages[parent].children.append(path)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path, page in sorted(pages.items()):
        target = out / _target(root, path, page.kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_render(root, page, pages), encoding="utf-8")
        written.append(target)
    return written


def _target(root: str, path: str, kind: str) -> Path:
    """Where the page of ``path`` goes, relative to the export directory."""
    rel = path[len(root) :].strip("/") if path.startswith(root) else path.strip("/")
    parts = [_file_name(p) for p in rel.split("/") if p] if rel else []
    if kind == "folder":
        return Path(*parts, "index.md") if parts else Path("index.md")
    if not parts:  # the root itself is a file
        return Path(_file_name(posixpath.basename(path) or "root") + ".md")
    return Path(*parts[:-1], parts[-1] + ".md")


def _link(root: str, here: _Page, there: _Page) -> str:
    source = _target(root, here.path, here.kind).parent
    target = _target(root, there.path, there.kind)
    return quote(Path(os.path.relpath(target, source or ".")).as_posix())  # a URL: % is %25


def _render(root: str, page: _Page, pages: dict[str, _Page]) -> str:
    name = posixpath.basename(page.path) or page.path
    lines = [f"# {_md(name)}", "", f"`{page.path}`", ""]
    if page.description:
        lines += [page.description.strip(), ""]
    parent = pages.get(posixpath.dirname(page.path))
    if parent is not None and page.path != root:
        lines += [
            f"Up: [{posixpath.basename(parent.path) or parent.path}]({_link(root, page, parent)})",
            "",
        ]
    if page.children:
        lines += ["## Contents", ""]
        for child_path in page.children:
            child = pages[child_path]
            summary = (child.description or "").strip().splitlines()
            first = f": {summary[0]}" if summary else ""
            label = posixpath.basename(child_path) + ("/" if child.kind == "folder" else "")
            lines.append(f"- [{_md(label)}]({_link(root, page, child)}){first}")
        lines.append("")
    entries = sorted(page.entries, key=lambda e: (e.get("start_line") or 0, str(e["path"])))
    for entry in entries:
        qualified = str(entry["path"]).split("::", 1)[1]
        kind = "class" if "CLASS" in {str(x) for x in entry["labels"]} else "function"
        depth = min(qualified.count(".") + 2, 6)
        heading = f"{'#' * depth} {_md(qualified)} ({kind})"
        lines += [heading, "", str(entry["description"]).strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
