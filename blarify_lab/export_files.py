"""Writing an export's pages into a directory without following links or touching foreign files.

``ExportDir.open(out, force=...)`` refuses a directory that is not empty unless ``force``; an
export leaves a manifest (``MANIFEST``) of the pages and folders it wrote, so that the next
export replaces and removes only those. Every path is walked one component at a time from a
descriptor of ``out`` (``O_NOFOLLOW``: a symbolic link inside ``out`` is never followed, it
is a foreign entry), and every page is written to a new temporary file beside it, then renamed
over its name (which replaces a link itself, never its target).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import ExportRefusedError

__all__ = ["MANIFEST", "ExportDir"]

MANIFEST = ".blarify-export.json"
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def _relative(value: object) -> PurePosixPath | None:
    """A manifest entry as a relative path inside the export, or None when it is not one."""
    if not isinstance(value, str) or not value or "\0" in value:
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or any(part in ("", ".", "..") for part in value.split("/")):
        return None
    return path


def _read_manifest(out: Path) -> tuple[set[PurePosixPath], set[PurePosixPath]]:
    """The pages and folders an earlier export wrote into ``out`` (empty when unknown)."""
    try:
        fd = os.open(out / MANIFEST, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return set(), set()
    if not isinstance(data, dict):
        return set(), set()
    found: list[set[PurePosixPath]] = []
    for key in ("pages", "dirs"):
        entries = data.get(key)  # pyright: ignore[reportUnknownMemberType]
        items: Iterable[object] = entries if isinstance(entries, list) else []  # pyright: ignore[reportUnknownVariableType]
        found.append({p for p in map(_relative, items) if p is not None})
    return found[0], found[1]


@dataclass
class ExportDir:
    """The export directory: what an earlier export wrote there, and how to write safely."""

    out: Path
    pages: set[PurePosixPath] = field(default_factory=set[PurePosixPath])
    dirs: set[PurePosixPath] = field(default_factory=set[PurePosixPath])
    _fds: dict[PurePosixPath, int] = field(default_factory=dict[PurePosixPath, int])

    @classmethod
    def open(cls, out: Path, *, force: bool) -> ExportDir:
        """The directory ``out``; raises ``ExportRefusedError`` when it holds anything and
        ``force`` is false."""
        out = Path(os.path.abspath(out))
        if not out.exists():
            return cls(out)
        if not out.is_dir():
            raise NotADirectoryError(f"cannot export to {out}: it is not a directory")
        entries = sorted(os.listdir(out))
        if entries and not force:
            raise ExportRefusedError(str(out), entries)
        pages, dirs = _read_manifest(out)
        return cls(out, pages, dirs)

    def taken(self, folder: PurePosixPath) -> set[str]:
        """Casefolded names in ``folder`` that are not ours: an export must not use them (our
        folders are listed with a trailing ``/``: not to be used by a page)."""
        fd = self._dir(folder, create=False)
        if fd is None:
            return set()
        names: set[str] = set()
        for name in os.listdir(fd):
            rel = folder / name
            try:
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except FileNotFoundError:  # gone meanwhile
                continue
            ours = (rel in self.pages and stat.S_ISREG(mode)) or (
                rel in self.dirs and stat.S_ISDIR(mode)
            )
            if not ours and not (rel == PurePosixPath(MANIFEST) and stat.S_ISREG(mode)):
                names.add(name.casefold())
            elif stat.S_ISDIR(mode):  # our folder: a folder again, never a page
                names.add(name.casefold() + "/")
        return names

    def write(self, files: Mapping[PurePosixPath, str]) -> list[Path]:
        """Write ``files`` (relative path -> text), remove our pages not among them, and
        record the manifest; returns the paths written, in the order given."""
        os.makedirs(self.out, exist_ok=True)
        written: list[PurePosixPath] = []
        removed: set[PurePosixPath] = set()
        try:
            for rel, text in files.items():
                fd = self._dir(rel.parent, create=True)
                assert fd is not None
                _replace(fd, rel.name, text)
                written.append(rel)
            for rel in sorted(self.pages - set(files)):
                self._remove_page(rel)
                removed.add(rel)
            self._remove_empty_dirs(set(files))
        finally:
            self.pages = (self.pages - removed) | set(written)
            try:
                self._save_manifest()
            finally:
                self.close()
        return [self.out / rel for rel in written]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    # -------------------------------------------------------------------------- internals

    def _dir(self, folder: PurePosixPath, *, create: bool) -> int | None:
        """A descriptor of ``out/folder``, walked without following links (None if absent)."""
        if folder in self._fds:
            return self._fds[folder]
        if folder == PurePosixPath() or str(folder) == ".":
            try:
                fd = os.open(self.out, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
            except FileNotFoundError:
                return None
        else:
            parent = self._dir(folder.parent, create=create)
            if parent is None:
                return None
            if create:
                try:
                    os.mkdir(folder.name, 0o755, dir_fd=parent)
                    self.dirs.add(folder)
                except FileExistsError:
                    pass
            try:
                fd = os.open(folder.name, _DIR_FLAGS, dir_fd=parent)
            except OSError:  # absent, not a folder, or a link (never followed)
                if create:
                    raise
                return None
        self._fds[folder] = fd
        return fd

    def _remove_page(self, rel: PurePosixPath) -> None:
        """Delete our stale page ``rel`` if it is still a plain file (anything else that took
        its place is not ours any more, and is left alone)."""
        fd = self._dir(rel.parent, create=False)
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.stat(rel.name, dir_fd=fd, follow_symlinks=False).st_mode):
                os.unlink(rel.name, dir_fd=fd)

    def _remove_empty_dirs(self, keep: set[PurePosixPath]) -> None:
        """Remove the folders we made that hold nothing now (deepest first)."""
        used = {parent for rel in keep for parent in rel.parents}
        for folder in sorted(self.dirs - used, key=lambda p: len(p.parts), reverse=True):
            fd = self._dir(folder.parent, create=False)
            if fd is None:
                self.dirs.discard(folder)
                continue
            sub = self._fds.pop(folder, None)
            if sub is not None:
                os.close(sub)
            try:
                os.rmdir(folder.name, dir_fd=fd)
                self.dirs.discard(folder)
            except FileNotFoundError:
                self.dirs.discard(folder)
            except OSError:
                pass  # not empty (a file of someone else's) or not a folder: left alone

    def _save_manifest(self) -> None:
        fd = self._dir(PurePosixPath(), create=True)
        assert fd is not None
        data = {
            "written_by": "blarify-lab export",
            "pages": sorted(p.as_posix() for p in self.pages),
            "dirs": sorted(p.as_posix() for p in self.dirs),
        }
        _replace(fd, MANIFEST, json.dumps(data, indent=1) + "\n")


def _replace(dir_fd: int, name: str, text: str) -> None:
    """Write ``text`` to a new file beside ``name``, then rename it over ``name`` (which
    replaces a link or a file there, and never writes through a link)."""
    tmp = f".{name[:40]}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, _NEW_FILE, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
