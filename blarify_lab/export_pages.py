"""The pages of a Markdown export, in memory: which pages, under which names, with what text.

Pure: no database, no file system. ``documentation.export_markdown`` reads the rows, asks
``export_files`` what the directory already holds, and writes what this module renders.

Page names mirror the code, one name per path segment: every character outside
``[A-Za-z0-9._-]`` is percent-encoded (``a b`` is ``a%20b``, never ``a_b``'s page); a folder
becomes ``<name>/index.md``, a file ``<name>.md``. Names are collision-free (compared
case-insensitively, against each other and against what the directory holds that an earlier
export did not write) and at most ``MAX_NAME`` bytes: a name that collides or is too long gets
a short hash of the code path instead of its tail (``x.py-3f2a9c1d.md``), and a warning says so.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from . import markdown as md
from .schema import GraphSchema

__all__ = ["MAX_NAME", "Page", "assign_targets", "build_pages", "kind_of", "render"]

MAX_NAME = 150
"""Longest page or folder name written, in bytes (file systems allow 255)."""

INDEX = "index.md"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Page:
    """One Markdown page: a folder's index or a file with its classes and functions."""

    path: str  # the code path it documents
    kind: str  # "folder" or "file"
    description: str | None = None
    row: dict[str, Any] | None = None  # its documentation row (grounding included)
    entries: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    children: list[str] = field(default_factory=list[str])


def build_pages(
    root: str, rows: list[dict[str, Any]], schema: GraphSchema | None = None
) -> dict[str, Page]:
    """The pages of the documented nodes (``rows`` of ``documentation_query``), by code path,
    told apart by the schema: a folder and a file (by kind) have their own page; a definition
    is a section of its file's page (the file it shares the schema's ``file_property`` with,
    else the part of its identity before a definition separator)."""
    schema = schema or GraphSchema()
    files_at: dict[str, str] = {}
    if schema.file_property is not None:
        for r in rows:
            if kind_of(r["labels"]) in schema.file_kinds:
                files_at[str(r.get("location"))] = str(r["path"])
    pages: dict[str, Page] = {}
    for r in rows:
        path, kind = str(r["path"]), kind_of(r["labels"])
        if kind in schema.folder_kinds or kind in schema.file_kinds or not _file_of(path, schema):
            page_kind = "folder" if kind in schema.folder_kinds else "file"
            page = pages.setdefault(path, Page(path, page_kind))
            page.kind, page.description, page.row = page_kind, r["description"], r
            continue
        file_path = files_at.get(str(r.get("location"))) or _file_of(path, schema) or path
        qualified = path[len(file_path) :] if path.startswith(file_path) else path
        for sep in schema.definition_separators:
            qualified = qualified.removeprefix(sep)
        entry = {**r, "qualified": qualified or str(r["name"]), "kind": kind}
        pages.setdefault(file_path, Page(file_path, "file")).entries.append(entry)
    for path in sorted(pages):
        parent = posixpath.dirname(path)
        if path != root and parent in pages:
            pages[parent].children.append(path)
    return pages


def kind_of(labels: object) -> str:
    """A node's kind: its first label other than blarify's ``NODE``."""
    names = [str(label) for label in labels] if isinstance(labels, list) else []
    return next((name for name in names if name != "NODE"), "")


def _file_of(path: str, schema: GraphSchema) -> str:
    """A definition's file from its identity: before the first definition separator
    (empty when there is none)."""
    cuts = [path.find(sep) for sep in schema.definition_separators if sep in path]
    return path[: min(cuts)] if cuts else ""


def _line(value: object) -> int:
    """A start line as a number (blarify's may be strings; unknown sorts first)."""
    try:
        return int(str(value))
    except ValueError:
        return 0


# ---------------------------------------------------------------------------------- naming


def _encode(part: str) -> str:
    if part in (".", ".."):
        return part.replace(".", "%2E")
    return _UNSAFE.sub(lambda m: quote(m.group(0), safe=""), part) or "%00"


def _digest(key: str, size: int = 8) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:size]


def _bounded(stem: str, suffix: str, key: str, *, hashed: bool, size: int = 8) -> str:
    """``stem + suffix`` within ``MAX_NAME``; with ``hashed`` (or when too long) the stem's
    tail gives way to ``-<hash of key>``. A ``%XX`` escape is never cut."""
    if not hashed and len(stem) + len(suffix) <= MAX_NAME:
        return stem + suffix
    keep = MAX_NAME - len(suffix) - size - 1
    cut = stem[:keep]
    if "%" in cut[-2:]:
        cut = cut[: cut.rindex("%")]
    return f"{cut}-{_digest(key, size)}{suffix}"


def _segments(root: str, path: str) -> list[str]:
    rel = path[len(root) :] if path.startswith(root) else path
    return [p for p in rel.split("/") if p]


@dataclass
class _Dir:
    """A folder of the export and the entries wanted in it."""

    key: str  # the code path it stands for (hashed when its name must change)
    index: str | None = None  # the folder page that is its index.md
    files: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])  # (name, page)
    subdirs: set[str] = field(default_factory=set[str])


def assign_targets(
    root: str,
    pages: Mapping[str, Page],
    taken: Callable[[PurePosixPath], set[str]],
) -> tuple[dict[str, PurePosixPath], list[str]]:
    """Where each page goes, relative to the export directory, and the code paths renamed.

    ``taken(folder)`` gives the casefolded names in that export folder that must not be used
    (what an earlier export did not write there); a name ending in ``/`` is a folder an
    earlier export made, which may be a folder again but never a page. In each folder ``index.md`` is the folder's
    own page; then files claim their names, in path order, then subfolders. The loser of a
    collision, and a name over ``MAX_NAME``, gets a hash suffix.
    """
    dirs: dict[tuple[str, ...], _Dir] = {(): _Dir(root)}
    for path in sorted(pages):
        page = pages[path]
        segs = _segments(root, path)
        if not segs and page.kind == "file":
            segs = [posixpath.basename(path) or "root"]
        folder = tuple(segs if page.kind == "folder" else segs[:-1])
        for depth in range(len(folder)):
            dirs[folder[:depth]].subdirs.add(folder[depth])
            dirs.setdefault(folder[: depth + 1], _Dir(posixpath.join(root, *folder[: depth + 1])))
        here = dirs[folder]
        if page.kind == "folder" and here.index is None:
            here.index = path
        else:  # a file; or a second folder page in the same place (paths such as /a//b)
            here.files.append((segs[-1] if segs else "index", path))

    physical: dict[tuple[str, ...], PurePosixPath] = {(): PurePosixPath()}
    targets: dict[str, PurePosixPath] = {}
    renamed: list[str] = []
    for key in sorted(dirs, key=lambda k: (len(k), k)):
        here, where = dirs[key], physical[key]
        foreign = taken(where)
        used = {INDEX} | foreign
        wanted = [(seg, path, ".md") for seg, path in here.files]
        if here.index is not None and (INDEX in foreign or INDEX + "/" in foreign):
            wanted.insert(0, ("index", here.index, ".md"))
        elif here.index is not None:
            targets[here.index] = where / INDEX
        wanted += [(seg, dirs[(*key, seg)].key, "") for seg in sorted(here.subdirs)]
        for seg, path, suffix in wanted:
            plain = _encode(seg) + suffix
            name = _bounded(_encode(seg), suffix, path, hashed=False)
            attempt = 0
            while name.casefold() in used or (suffix and name.casefold() + "/" in used):
                again = path if attempt == 0 else f"{path}#{attempt}"
                name = _bounded(_encode(seg), suffix, again, hashed=True)
                attempt += 1
            if name != plain:
                renamed.append(path)
            used.add(name.casefold())
            if suffix:
                targets[path] = where / name
            else:
                physical[(*key, seg)] = where / name
    return targets, renamed


# -------------------------------------------------------------------------------- rendering


def _link(targets: Mapping[str, PurePosixPath], here: str, there: str) -> str:
    """A relative URL from the page of ``here`` to that of ``there`` (``%`` is ``%25``)."""
    source = targets[here].parent.parts
    target = targets[there].parts
    common = 0
    while common < min(len(source), len(target) - 1) and source[common] == target[common]:
        common += 1
    rel = [".."] * (len(source) - common) + list(target[common:])
    return quote("/".join(rel))


def grounding_note(row: Mapping[str, Any] | None) -> list[str]:
    """The mark of a description that names what the code does not have (``grounding``)."""
    names = (row or {}).get("ungrounded")
    if not isinstance(names, list | tuple) or not names:
        return []
    ratio = (row or {}).get("grounded_ratio")
    share = f" (grounded {ratio:.0%})" if isinstance(ratio, int | float) else ""
    listed = ", ".join(md.code_span(str(n)) for n in names)
    return [f"> **Unverified names**{share}: {listed} do not appear in the code.", ""]


def render(
    root: str, page: Page, pages: Mapping[str, Page], targets: Mapping[str, PurePosixPath]
) -> str:
    """The Markdown text of ``page``."""
    name = posixpath.basename(page.path) or page.path
    lines = [f"# {md.inline(name)}", "", md.code_span(page.path), ""]
    if page.description:
        lines += [md.description(page.description), ""]
        lines += grounding_note(page.row)
    parent = pages.get(posixpath.dirname(page.path))
    if parent is not None and page.path != root:
        up = md.inline(posixpath.basename(parent.path) or parent.path)
        lines += [f"Up: [{up}]({_link(targets, page.path, parent.path)})", ""]
    if page.children:
        lines += ["## Contents", ""]
        for child_path in page.children:
            child = pages[child_path]
            summary = (child.description or "").strip().splitlines()
            first = f": {md.description(summary[0])}" if summary else ""
            label = posixpath.basename(child_path) + ("/" if child.kind == "folder" else "")
            link = _link(targets, page.path, child_path)
            lines.append(f"- [{md.inline(label)}]({link}){first}")
        lines.append("")
    entries = sorted(page.entries, key=lambda e: (_line(e.get("start_line")), str(e["path"])))
    for entry in entries:
        qualified = str(entry["qualified"])
        kind = "class" if entry["kind"] == "CLASS" else "function"
        depth = min(qualified.count(".") + 2, 6)
        lines += [f"{'#' * depth} {md.inline(qualified)} ({kind})", ""]
        lines += [md.description(str(entry["description"])), ""]
        lines += grounding_note(entry)
    return "\n".join(lines).rstrip() + "\n"
