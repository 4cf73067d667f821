"""How fast ``load_python_package`` is, against the loader it replaced (issue 12).

    python benchmarks/loader.py              # synthetic package, and pandas/io if installed
    python benchmarks/loader.py --repeat 1   # each case once (the old algorithm takes ~20 s)

The synthetic package is generated deterministically in a temporary directory, sized like
``pandas/io`` (65 files, 1,900 KB, 2,000 definitions, six files of thousands of lines with
hundreds of definitions each). Two stages are timed for the old and the new algorithm:

* parse + extract + calls: read and parse every file, build the node rows (text sliced from
  the source) and resolve the calls. The old loader called ``ast.get_source_segment`` per
  definition, which splits the whole file again each time: quadratic in a file's size. A copy
  of it lives here, to measure.
* full load: the whole ``load_python_package`` into a fresh graph of an embedded FalkorDB
  (``blarify_lab.connect(temporary=True)``); the old one is copied here too. For the new one,
  also a reload of the unchanged tree (reads only) and a reload after one function changed.

Results (best of ``--repeat``; the slow old algorithm: best of a third of that) are printed and
written to ``benchmarks/results/loader.md``.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import random
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blarify_lab as bl
from blarify_lab import queries as q
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.pysource import CodeTree, add_file, resolve_calls

RESULTS = Path(__file__).parent / "results"
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache", ".tox"}


# ------------------------------------------------------------------------ synthetic package

_WORDS = [
    "frame",
    "buffer",
    "reader",
    "writer",
    "column",
    "index",
    "value",
    "table",
    "parse",
    "encode",
    "decode",
    "chunk",
    "header",
    "row",
    "schema",
    "format",
    "style",
    "block",
    "store",
    "path",
    "engine",
    "option",
    "dtype",
    "cell",
    "sheet",
    "record",
    "field",
]


def _function(rng: random.Random, name: str, indent: str, callees: list[str]) -> str:
    """A function of 8 to 40 lines: a docstring like pandas', some logic, a few calls."""
    words = rng.sample(_WORDS, 4)
    lines = [
        f"def {name}(self, {words[0]}, {words[1]}=None, *, {words[2]}: int = 0) -> object:",
        '    """',
        f"    {' '.join(rng.choices(_WORDS, k=12)).capitalize()}.",
        "",
        "    Parameters",
        "    ----------",
    ]
    for w in words[:3]:
        lines += [f"    {w} : object", f"        The {w} to {rng.choice(_WORDS)} — 'é' ok."]
    lines += ['    """', f"    result = {words[0]}"]
    for _ in range(rng.randint(2, 25)):
        kind = rng.random()
        if kind < 0.3 and callees:
            lines.append(f"    result = {rng.choice(callees)}(result)")
        elif kind < 0.45:
            lines.append(f"    result = self.{rng.choice(_WORDS)}_{rng.randint(0, 40)}(result)")
        elif kind < 0.7:
            lines += [f"    if {words[1]} is not None:", f"        result = [result, {words[1]}]"]
        else:
            lines.append(f"    {rng.choice(_WORDS)} = {{'{rng.choice(_WORDS)}': result}}  # note")
    lines.append("    return result")
    if not indent:
        lines[0] = lines[0].replace("(self, ", "(")
    return "\n".join(indent + line if line else "" for line in lines) + "\n"


def _module(rng: random.Random, defs: int, helpers: list[str]) -> str:
    parts = ['"""A generated module."""\n', "from __future__ import annotations\n", "import os\n"]
    made = 0
    while made < defs:
        if rng.random() < 0.3:
            cls = f"{rng.choice(_WORDS).capitalize()}{made}"
            parts.append(f'\nclass {cls}:\n    """A {cls}."""\n\n')
            made += 1
            for m in range(rng.randint(3, 20)):
                parts.append(_function(rng, f"{rng.choice(_WORDS)}_{m}", "    ", helpers) + "\n")
                made += 1
        else:
            name = f"{rng.choice(_WORDS)}_{made}"
            parts.append("\n" + _function(rng, name, "", helpers))
            made += 1
            if rng.random() < 0.15:  # a nested helper
                parts[-1] = parts[-1].replace(
                    "    return result\n",
                    "    def inner(x):\n        return x\n\n    return inner(result)\n",
                )
    return "\n".join(parts)


def generate_package(where: Path, seed: int = 12) -> Path:
    """A package like pandas/io: 50 small and medium modules, 6 large ones, in 8 folders."""
    rng = random.Random(seed)
    root = where / "synthio"
    folders = [root, *(root / name for name in ("excel", "formats", "json", "parsers", "sas"))]
    folders += [root / "formats" / "templates", root / "clipboard"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text('"""A folder."""\n')
    helpers = [f"helper_{i}" for i in range(40)]
    (root / "common.py").write_text("".join(f"def {h}(x):\n    return x\n\n\n" for h in helpers))
    for i in range(50):
        folder = folders[i % len(folders)]
        (folder / f"mod_{i}.py").write_text(_module(rng, rng.randint(4, 20), helpers))
    for i, defs in enumerate((80, 110, 140, 170, 200, 240)):
        (folders[i % 4] / f"big_{i}.py").write_text(_module(rng, defs, helpers))
    return root


# ---------------------------------------------------------------- the old loader, to measure


@dataclass
class _OldDef:
    path: str
    name: str
    cls: str | None
    node: ast.FunctionDef | ast.AsyncFunctionDef


def _old_add_defs(
    body: list[ast.stmt],
    text: str,
    file_path: str,
    parent_path: str,
    cls: str | None,
    qual: str,
    rows: dict[str, list[dict[str, Any]]],
    contains: list[tuple[str, str]],
    defs: list[_OldDef],
) -> None:
    """The old extraction, as it was: ``ast.get_source_segment`` per definition."""
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
                _old_add_defs(stmt.body, text, file_path, node_path, stmt.name, f"{name}.",
                              rows, contains, defs)  # fmt: skip
            else:
                defs.append(_OldDef(node_path, stmt.name, cls, stmt))
                _old_add_defs(stmt.body, text, file_path, node_path, None, f"{name}.",
                              rows, contains, defs)  # fmt: skip


def _old_resolve_calls(defs: list[_OldDef]) -> list[tuple[str, str]]:
    by_name: dict[str, list[_OldDef]] = defaultdict(list)
    for d in defs:
        by_name[d.name].append(d)
    pairs: set[tuple[str, str]] = set()
    for d in defs:
        for node in ast.walk(d.node):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            target: _OldDef | None = None
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


def _py_files(src: Path) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel = Path(dirpath).relative_to(src).as_posix()
        folder = "/x" if rel == "." else f"/x/{rel}"
        out += [
            (Path(dirpath) / f, f"{folder}/{f}") for f in sorted(filenames) if f.endswith(".py")
        ]
    return out


def old_extract(src: Path) -> int:
    """Old parse + extract + call resolution over the tree; returns the number of definitions."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    contains: list[tuple[str, str]] = []
    defs: list[_OldDef] = []
    for file, node_path in _py_files(src):
        try:
            text = file.read_text(encoding="utf-8")
            tree = ast.parse(text, filename=str(file))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        _old_add_defs(tree.body, text, node_path, node_path, None, "", rows, contains, defs)
    _old_resolve_calls(defs)
    return len(rows["CLASS"]) + len(rows["FUNCTION"])


def new_extract(src: Path) -> int:
    """New parse + extract + call resolution (the loader's own functions)."""
    tree = CodeTree()
    for file, node_path in _py_files(src):
        add_file(tree, file, node_path, None)
    resolve_calls(tree)
    return sum(1 for label in tree.labels.values() if label in ("CLASS", "FUNCTION"))


def old_load(db: GraphDB, src: Path) -> int:
    """The old ``load_python_package`` for a folder, verbatim but for names; returns nodes."""
    root_path = "/" + src.name
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    contains: list[tuple[str, str]] = []
    defs: list[_OldDef] = []
    rows["FOLDER"].append({"path": root_path, "name": src.name})
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        here = Path(dirpath)
        rel = here.relative_to(src).as_posix()
        folder_path = root_path if rel == "." else f"{root_path}/{rel}"
        for d in dirnames:
            rows["FOLDER"].append({"path": f"{folder_path}/{d}", "name": d})
            contains.append((folder_path, f"{folder_path}/{d}"))
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            file_path = f"{folder_path}/{f}"
            contains.append((folder_path, file_path))
            try:
                text = (here / f).read_text(encoding="utf-8")
                tree = ast.parse(text)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            rows["FILE"].append(
                {"path": file_path, "name": f, "text": text, "start_line": 1,
                 "end_line": len(text.splitlines())}
            )  # fmt: skip
            _old_add_defs(tree.body, text, file_path, file_path, None, "", rows, contains, defs)
    calls = _old_resolve_calls(defs)
    ids: dict[str, int] = {}
    for label, label_rows in rows.items():
        for i in range(0, len(label_rows), 2000):
            chunk = label_rows[i : i + 2000]
            for rec in db.run_query(q.create_nodes_query(label), {"rows": chunk}):
                ids[str(rec["path"])] = int(rec["node_id"])
    for rel, pairs in (("CONTAINS", contains), ("CALLS", calls)):
        known = [(ids[a], ids[b]) for a, b in pairs if a in ids and b in ids]
        for i in range(0, len(known), 5000):
            chunk = known[i : i + 5000]
            db.run_query(
                q.create_edges_query(rel),
                {"sources": [a for a, _ in chunk], "targets": [b for _, b in chunk]},
            )
    return sum(len(r) for r in rows.values())


# ---------------------------------------------------------------------------------- measure


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def fresh_graph(server: FalkorDBManager) -> FalkorDBManager:
    return server.select_graph(f"bench_{uuid.uuid4().hex[:10]}")


def measure(name: str, src: Path, server: FalkorDBManager, repeat: int) -> list[str]:
    files = len(_py_files(src))
    size_kb = sum(f.stat().st_size for f, _ in _py_files(src)) / 1024
    defs_old, defs_new = old_extract(src), new_extract(src)
    t_old = best_of(max(1, repeat // 3), lambda: old_extract(src))
    t_new = best_of(repeat, lambda: new_extract(src))

    def run_old() -> None:
        db = fresh_graph(server)
        try:
            old_load(db, src)
        finally:
            db.delete_graph()
            db.close()

    def run_new() -> None:
        db = fresh_graph(server)
        try:
            bl.load_python_package(db, src, progress=False)
        finally:
            db.delete_graph()
            db.close()

    l_old = best_of(max(1, repeat // 3), run_old)
    l_new = best_of(repeat, run_new)
    db = fresh_graph(server)
    try:
        loaded = bl.load_python_package(db, src, progress=False)
        r_same = best_of(repeat, lambda: bl.load_python_package(db, src, progress=False))
        work = Path(tempfile.mkdtemp(prefix="bench_edit_"))
        edited = work / src.name
        shutil.copytree(src, edited)
        target = max(edited.rglob("*.py"), key=lambda p: p.stat().st_size)
        text = target.read_text(encoding="utf-8")
        target.write_text(text.replace("return ", "return  ", 1), encoding="utf-8")
        start = time.perf_counter()
        diff = bl.load_python_package(db, edited, prefix=loaded.root_path, progress=False)
        r_edit = time.perf_counter() - start
        shutil.rmtree(work)
    finally:
        db.delete_graph()
        db.close()
    nodes = sum(loaded.nodes.values())
    return [
        f"| {name} | {files} files, {size_kb:,.0f} KB, {defs_old:,} defs (old) / "
        f"{defs_new:,} (new), {nodes:,} nodes | parse + extract + calls | {t_old:.2f} s | {t_new:.3f} s "
        f"| {t_old / t_new:.0f}x |",
        f"| | | full load, fresh graph | {l_old:.2f} s | {l_new:.3f} s | {l_old / l_new:.0f}x |",
        f"| | | reload, nothing changed (no writes) | | {r_same:.3f} s | |",
        f"| | | reload, one function changed ({diff.diff_summary()}) | | {r_edit:.3f} s | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N (3)")
    parser.add_argument("--no-pandas", action="store_true", help="skip the real pandas/io")
    args = parser.parse_args()
    rows = [
        "| tree | size | stage | old | new | speedup |",
        "|---|---|---|---:|---:|---:|",
    ]
    server = bl.connect(temporary=True)
    assert isinstance(server, FalkorDBManager)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
            rows += measure("synthetic", generate_package(Path(tmp)), server, args.repeat)
            print("\n".join(rows), flush=True)
        if not args.no_pandas:
            try:
                import pandas
            except ImportError:
                print("pandas not installed: pandas/io skipped")
            else:
                io = Path(pandas.__file__).parent / "io"
                more = measure(f"pandas {pandas.__version__} io", io, server, args.repeat)
                print("\n".join(more))
                rows += more
    finally:
        server.close()
    RESULTS.mkdir(exist_ok=True)
    head = (
        "# Loader benchmark\n\n`python benchmarks/loader.py` on "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; best of {args.repeat} (the old algorithm: best of "
        f"{max(1, args.repeat // 3)}).\n\n"
    )
    (RESULTS / "loader.md").write_text(head + "\n".join(rows) + "\n")
    print(f"written to {RESULTS / 'loader.md'}")


if __name__ == "__main__":
    main()
