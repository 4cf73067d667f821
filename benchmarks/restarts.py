"""Does the default database last? Unchanged re-runs, each on a freshly started embedded server.

    python benchmarks/restarts.py                 # 1,000 re-runs of a 500-node package
    python benchmarks/restarts.py --runs 100      # fewer

A synthetic package of about 500 nodes is loaded into a persistent embedded FalkorDB (a data
directory of its own) and documented once by the offline summariser. Then ``--runs`` times, as a
new process would: ``connect(data_dir=...)`` (the server starts and loads the directory), one
session over the whole package that reuses every stored description (0 LLM calls), ``close()``
(the last user leaves: the server stops). Every ``--every`` runs, and after the last, a fresh
``connect()`` plus ``list_sessions()`` is timed and the directory's size measured.

Wanted (issue 17): the directory stays near its first size and the fresh ``connect()`` plus
``sessions list`` stays under 1 s, however many re-runs came before. Results are printed and
written to ``benchmarks/results/restarts.md``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import blarify_lab as bl
from blarify_lab.leftovers import list_sessions
from blarify_lab.llm import ExtractiveSummarizer
from blarify_lab.processor import RecursiveDFSProcessor

RESULTS = Path(__file__).parent / "results"
TARGET_S = 1.0


def write_package(root: Path, files: int = 9, classes: int = 5, methods: int = 10) -> Path:
    """A package of ``files`` modules, each with ``classes`` classes of ``methods`` methods
    (1 + files * (1 + classes * (1 + methods)) nodes: 505 by default)."""
    package = root / "restartpkg"
    package.mkdir()
    for f in range(files):
        lines = [f'"""Module {f}."""', ""]
        for c in range(classes):
            lines += [f"class Thing{f}x{c}:", f'    """Thing {c} of module {f}."""', ""]
            for m in range(methods):
                lines += [
                    f"    def step{m}(self, value: int) -> int:",
                    f'        """Step {m}: adds {m} to value."""',
                    f"        return value + {m}",
                    "",
                ]
        (package / f"mod{f}.py").write_text("\n".join(lines))
    return package


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def aof_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "appendonlydir").glob("*") if p.is_file())


def fresh_connect_and_list(data_dir: Path) -> tuple[float, int]:
    """Seconds for ``connect()`` (server start and load) plus ``list_sessions()``; the number of
    sessions listed (0 expected)."""
    start = time.perf_counter()
    with bl.connect(data_dir=data_dir) as db:
        listed = len(list_sessions(db))
        elapsed = time.perf_counter() - start
    return elapsed, listed


def rerun(data_dir: Path, root: str) -> int:
    """One unchanged re-run as a new process makes it; returns its LLM calls."""
    with bl.connect(data_dir=data_dir) as db:
        processor = RecursiveDFSProcessor(db, ExtractiveSummarizer(), progress=False)
        processor.process_node(root)
        session = processor.last_session
        assert session is not None
        return session.llm_calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="unchanged re-runs (1000)")
    parser.add_argument("--every", type=int, default=100, help="measure every N runs (100)")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="blarify_lab_restarts_"))
    data_dir = work / "data"
    rows: list[tuple[int, int, int, float, int, float]] = []
    try:
        package = write_package(work)
        with bl.connect(data_dir=data_dir) as db:
            loaded = bl.load_python_package(db, package)
            RecursiveDFSProcessor(db, ExtractiveSummarizer(), progress=False).process_node(
                loaded.root_path
            )
            nodes = db.run_query("MATCH (n) RETURN count(n) AS c", {})[0]["c"]
        print(f"{loaded}: {nodes} nodes in the graph (documentation included)", flush=True)
        elapsed, listed = fresh_connect_and_list(data_dir)
        rows.append((0, dir_size(data_dir), aof_size(data_dir), elapsed, listed, 0.0))
        print(_row(rows[-1]), flush=True)
        calls = 0
        started = time.perf_counter()
        for run in range(1, args.runs + 1):
            calls += rerun(data_dir, loaded.root_path)
            if run % args.every == 0 or run == args.runs:
                per_run = (time.perf_counter() - started) / run
                elapsed, listed = fresh_connect_and_list(data_dir)
                rows.append((run, dir_size(data_dir), aof_size(data_dir), elapsed, listed, per_run))
                print(_row(rows[-1]), flush=True)
        table = _table(rows)
        verdict = (
            f"{args.runs} unchanged re-runs made {calls} LLM calls; the directory went from "
            f"{rows[0][1] / 1024:,.0f} KB to {rows[-1][1] / 1024:,.0f} KB; a fresh connect() "
            f"plus sessions list took {rows[-1][3]:.2f} s at the end (target < {TARGET_S:.0f} s)"
        )
        print("\n" + table + "\n" + verdict)
        if not args.no_write:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "restarts.md").write_text(
                "# Restarts benchmark\n\n"
                f"`python benchmarks/restarts.py --runs {args.runs}` on CPython "
                f"{platform.python_version()}: {nodes} nodes with the descriptions.\n\n{table}\n\n{verdict}.\n"
            )
        ok = rows[-1][3] < TARGET_S and calls == 0
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


HEADER = "| re-runs | directory | append-only files | connect + sessions list | per re-run |"


def _row(row: tuple[int, int, int, float, int, float]) -> str:
    run, size, aof, elapsed, listed, per_run = row
    listed_note = "" if listed == 0 else f" ({listed} sessions!)"
    return (
        f"| {run:,} | {size / 1024:,.0f} KB | {aof / 1024:,.0f} KB | {elapsed:.2f} s{listed_note} "
        f"| {per_run:.2f} s |"
    )


def _table(rows: list[tuple[int, int, int, float, int, float]]) -> str:
    return "\n".join([HEADER, "|---:|---:|---:|---:|---:|", *(_row(r) for r in rows)])


if __name__ == "__main__":
    sys.exit(main())
