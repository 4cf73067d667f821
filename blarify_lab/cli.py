"""The ``blarify-lab`` command: a demo, processing, and finding and cleaning leftover sessions.

Exit codes: 0 done, 1 the work failed (timeout, database lost), 2 bad input (unknown path, bad
URI, bad session id, unreachable database), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from . import (
    ExtractiveSummarizer,
    GraphDBError,
    NodeNotFoundError,
    RecursiveDFSProcessor,
    cleanup_leftovers,
    cleanup_session,
    connect,
    list_sessions,
    load_python_package,
)
from .db import FalkorDBManager, Neo4jManager

__all__ = ["main"]


class UserError(Exception):
    """Bad input: reported in one line, exit code 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blarify-lab",
        description="Document a code graph bottom-up, one isolated session at a time.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    uri_help = "database URI (default: $BLARIFY_LAB_URI, else the embedded database)"

    demo = sub.add_parser("demo", help="document a real Python package on a throwaway database")
    demo.add_argument("--package", type=Path, help="package to load (default: blarify_lab itself)")
    demo.add_argument("--workers", type=_positive_int, default=8)
    demo.add_argument("--out", type=Path, default=Path("blarify_lab_demo_report.csv"))
    demo.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds each simulated LLM call takes, to watch the scheduling (default 0)",
    )

    load = sub.add_parser("load", help="load a Python package or file into the database")
    load.add_argument("path", type=Path)
    load.add_argument("--uri", help=uri_help)
    load.add_argument("--prefix", help="path prefix of the loaded nodes (default: /<name>)")

    process = sub.add_parser("process", help="run one session from the node at PATH")
    process.add_argument("path", help="the node's path, e.g. /mypkg or /mypkg/mod.py::func")
    process.add_argument("--uri", help=uri_help)
    process.add_argument("--workers", type=_positive_int, default=5)
    process.add_argument("--timeout", type=_positive_float, help="seconds for the whole session")
    process.add_argument("--calls", action="store_true", help="follow CALLS, not CONTAINS")
    process.add_argument("--scope", choices=("graph", "subtree"), default="subtree")
    process.add_argument("--out", type=Path, help="write the per-node report to this CSV")
    process.add_argument("--no-progress", action="store_true")

    sessions = sub.add_parser("sessions", help="list or clean up processing sessions")
    ssub = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = ssub.add_parser("list", help="sessions found in the graph: active, stale, orphaned")
    ls.add_argument("--uri", help=uri_help)
    ls.add_argument("--stale-after", help="e.g. 90s, 15m (default: three heartbeats)")
    clean = ssub.add_parser("cleanup", help="remove stale and orphaned sessions, or one by id")
    clean.add_argument("--uri", help=uri_help)
    which = clean.add_mutually_exclusive_group()
    which.add_argument("--session", help="the id of one session to remove")
    which.add_argument("--stale-after", help="e.g. 90s, 15m (default: three heartbeats)")
    clean.add_argument("--dry-run", action="store_true", help="show what would be removed")
    clean.add_argument("--force", action="store_true", help="remove active sessions too")
    return parser


def _connect(uri: str | None) -> FalkorDBManager | Neo4jManager:
    try:
        return connect(uri)
    except ValueError as err:
        raise UserError(str(err)) from None
    except GraphDBError as err:
        raise UserError(str(err)) from None


def _print_frame(frame: pd.DataFrame, empty: str) -> None:
    if frame.empty:
        print(empty)
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(frame.to_string(index=False))


def _demo(args: argparse.Namespace) -> int:
    package = args.package or Path(__file__).resolve().parent
    if not package.exists():
        raise UserError(f"no such package: {package}")
    print("Starting an embedded FalkorDB (throwaway data directory) ...")
    with connect(temporary=True) as db:
        start = time.perf_counter()
        loaded = load_python_package(db, package)
        print(f"Loaded {package} in {time.perf_counter() - start:.2f} s: {loaded}")
        summarizer = ExtractiveSummarizer()
        latency: float = max(0.0, args.latency)

        def llm(prompt: str) -> str:
            if latency:
                time.sleep(latency)
            return summarizer.get_completion(prompt)

        processor = RecursiveDFSProcessor(db, llm, max_workers=args.workers)
        text = processor.process_node(loaded.root_path)
        session = processor.last_session
        assert session is not None
        print("\nSummary")
        _print_frame(session.summary().reset_index(), "")
        session.report().to_csv(args.out, index=False)
        print(f"\nPer-node report ({session.total} rows) written to {args.out.resolve()}")
        print(f"Session state left in the graph: {len(list_sessions(db))} sessions")
        print(f"\nDocumentation of {loaded.root_path} (first lines):")
        print("\n".join(text.splitlines()[:12]))
    return 0


def _load(args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise UserError(f"no such package or file: {args.path}")
    with _connect(args.uri) as db:
        print(load_python_package(db, args.path, prefix=args.prefix))
    return 0


def _process(args: argparse.Namespace) -> int:
    with _connect(args.uri) as db:
        processor = RecursiveDFSProcessor(
            db,
            ExtractiveSummarizer(),
            max_workers=args.workers,
            timeout=args.timeout,
            scope=args.scope,
            progress=not args.no_progress,
        )
        try:
            text = processor.process_node(args.path, use_hierarchy=not args.calls)
        except NodeNotFoundError as err:
            raise UserError(str(err)) from None
        print(text)
        session = processor.last_session
        if args.out is not None and session is not None:
            session.report().to_csv(args.out, index=False)
            print(f"report written to {args.out.resolve()}", file=sys.stderr)
    return 0


def _sessions(args: argparse.Namespace) -> int:
    with _connect(args.uri) as db:
        try:
            if args.action == "list":
                _print_frame(list_sessions(db, stale_after=args.stale_after), "no sessions")
                return 0
            if args.session is not None:
                if args.dry_run:
                    found = list_sessions(db)
                    found = found.loc[found["session_id"] == args.session]
                    _print_frame(found, f"no session {args.session} in the graph")
                    return 0
                removed = cleanup_session(db, args.session)
                print(f"removed session {args.session} from {removed} nodes")
                return 0
            frame = cleanup_leftovers(
                db, stale_after=args.stale_after, dry_run=args.dry_run, force=args.force
            )
        except ValueError as err:
            raise UserError(str(err)) from None
        _print_frame(frame, "nothing to clean up")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    commands = {"demo": _demo, "load": _load, "process": _process, "sessions": _sessions}
    try:
        return commands[args.command](args)
    except UserError as err:
        print(f"blarify-lab: error: {err}", file=sys.stderr)
        return 2
    except TimeoutError as err:
        print(f"blarify-lab: timed out: {err}", file=sys.stderr)
        return 1
    except GraphDBError as err:
        print(f"blarify-lab: database error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("blarify-lab: interrupted; the session's state was removed", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
