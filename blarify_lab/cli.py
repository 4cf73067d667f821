"""The ``blarify-lab`` command: a demo, processing, and finding and cleaning leftover sessions.

Commands document with the offline ``ExtractiveSummarizer`` unless ``process --model NAME``
names a model on an OpenAI-compatible server (``--base-url``; the key from
``$OPENAI_API_KEY``).

Exit codes: 0 done; 1 the work failed (timeout, budget reached, database lost during the run,
cleanup failed);
2 bad input (unknown path, bad URI, bad session id or duration, unreachable database, a report
file that cannot be written, an argument that is not valid text, a load that would remove
another tree's documentation, an unknown session, an export folder that is not ours); 130 interrupted (Ctrl-C),
143 terminated (SIGTERM), 129 hung up (SIGHUP): a running session removes its state first in
all three. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from .cli_args import PROG, build_parser, schema_of
from .cli_db import run_db
from .cli_signals import SignalInterrupt, signals_interrupt
from .db import URI_ENV_VAR, FalkorDBManager, Neo4jManager, connect
from .detection import detect_schema
from .documentation import export_markdown
from .errors import (
    AmbiguousNodeError,
    AmbiguousTenantError,
    BudgetExceededError,
    ExportRefusedError,
    GraphDBError,
    NodeNotFoundError,
    SessionCleanupError,
    SessionNotFoundError,
    SourceConflictError,
)
from .leftovers import cleanup_leftovers, cleanup_session, list_sessions, parse_duration
from .llm import ExtractiveSummarizer
from .loader import LoadedPackage, load_python_package
from .processor import RecursiveDFSProcessor
from .reports import session_text
from .session import ProcessingSession

__all__ = ["main"]

DEMO_DOC_LINES = 12
DEMO_SUMMARY = ["status", "nodes", "completed", "failed", "llm_calls", "cached", "wall_s"]


class UserError(Exception):
    """Bad input: reported in one line, exit code 2."""


def _one_line(err: BaseException | str) -> str:
    """A message on one line (driver messages can span several)."""
    return " ".join(str(err).split())


# ---------------------------------------------------------------------------------- helpers


def _connect(
    uri: str | None, args: argparse.Namespace | None = None
) -> FalkorDBManager | Neo4jManager:
    """``connect(uri)`` with bad input turned into ``UserError``; the server must answer.
    With a command's ``args``, the database line names the schema (``--schema``, or found)."""
    try:
        db = connect(uri)
    except (ValueError, GraphDBError) as err:
        raise UserError(_one_line(err)) from None
    try:
        db.run_query("RETURN 1 AS ok", {})
    except GraphDBError as err:
        db.close()
        raise UserError(_one_line(err)) from None
    schema = None if args is None else schema_of(args) or detect_schema(db)
    shape = "" if schema is None else f", schema {schema.name}"
    shape += f", tenant {schema.tenant_label}" if schema and schema.tenant_label else ""
    _say_database(db, embedded=uri is None and not os.environ.get(URI_ENV_VAR), shape=shape)
    return db


def _say_database(db: FalkorDBManager | Neo4jManager, *, embedded: bool, shape: str = "") -> None:
    """Name the database in use, on one line of stderr (a URI never carries a password)."""
    if embedded:
        from .embedded import default_data_dir

        where = f"embedded FalkorDB {db.uri} (data in {default_data_dir()})"
    else:
        where = db.uri if isinstance(db, FalkorDBManager) else f"Neo4j {db.uri} as {db.user}"
    print(f"{PROG}: database {where}{shape}", file=sys.stderr)


@contextmanager
def _throwaway_database() -> Iterator[FalkorDBManager | Neo4jManager]:
    """An embedded FalkorDB on a temporary data directory, whatever $BLARIFY_LAB_URI says.

    ``connect()`` prefers the environment's URI to ``temporary=True``, so it is set aside for
    the call: the demo must never write into the user's graph.
    """
    saved = os.environ.pop(URI_ENV_VAR, None)
    try:
        db = connect(temporary=True)
    except GraphDBError as err:
        raise UserError(f"could not start the embedded database: {_one_line(err)}") from None
    finally:
        if saved is not None:
            os.environ[URI_ENV_VAR] = saved
    print(
        f"{PROG}: database embedded FalkorDB {db.uri} (throwaway data directory)", file=sys.stderr
    )
    with db:
        yield db


def _check_writable(out: Path | None) -> None:
    """Fail before the run, not after it, when the report cannot be written."""
    if out is None:
        return
    parent = out.expanduser().resolve().parent
    if not parent.is_dir():
        raise UserError(f"cannot write the report to {out}: no directory {parent}")
    if out.is_dir():
        raise UserError(f"cannot write the report to {out}: it is a directory")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write the report to {out}: {parent} is not writable")


def _write_report(session: ProcessingSession, out: Path) -> Path:
    path = out.expanduser().resolve()
    try:
        session.report().to_csv(path, index=False)
    except OSError as err:
        raise UserError(f"cannot write the report to {out}: {_one_line(err)}") from None
    return path


def _print_frame(frame: pd.DataFrame, empty: str) -> None:
    if frame.empty:
        print(empty)
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(_compact(frame).to_string(index=False))


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame for a terminal: columns with nothing in them (all empty, or counts all 0) left
    out, timestamps to the second."""
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        values = pd.Series(frame[col])
        if bool(values.isna().all()) or (col in _COUNTS and bool((values == 0).all())):
            continue
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.strftime("%Y-%m-%d %H:%M:%S")
        out[col] = values
    return out


_COUNTS = frozenset({"pending", "queued", "running", "in_progress", "failed"})


def _session_line(session: ProcessingSession) -> str:
    return session_text(session)


# --------------------------------------------------------------------------------- commands


def _demo(args: argparse.Namespace) -> int:
    package: Path = (args.package or Path(__file__).resolve().parent).expanduser()
    if not package.exists():
        raise UserError(f"no such package or file: {package}")
    _check_writable(args.out)
    print("Starting an embedded FalkorDB (throwaway data directory) ...")
    with _throwaway_database() as db:
        start = time.perf_counter()
        loaded = load_python_package(db, package)
        print(f"Loaded {package.name} in {time.perf_counter() - start:.2f} s: {loaded}")
        for file, reason in loaded.skipped_reasons.items():
            print(f"skipped {file}: {reason}")
        summarizer = ExtractiveSummarizer()
        latency: float = args.latency

        def llm(prompt: str) -> str:
            if latency:
                time.sleep(latency)
            return summarizer.get_completion(prompt)

        processor = RecursiveDFSProcessor(db, llm, max_workers=args.workers, scope="subtree")
        args.processor = processor
        text = processor.process_node(loaded.root_path)
        session = processor.last_session
        assert session is not None
        print("\nSummary")
        _print_frame(pd.DataFrame(session.summary()[DEMO_SUMMARY]).reset_index(drop=True), "")
        out = _write_report(session, args.out)
        print(f"\nPer-node report ({session.total} rows) written to {_shown(out)}")
        print(f"Session state left in the graph: {len(list_sessions(db))} sessions")
        again = processor.process_node(loaded.root_path, progress=False)
        second = processor.last_session
        assert second is not None
        print(
            f"Second run: {second.llm_calls} LLM calls, {second.cached} descriptions reused "
            f"from the graph, same documentation: {again == text}"
        )
        print(f"\nDocumentation of {loaded.root_path} (first lines):")
        print("\n".join(text.splitlines()[:DEMO_DOC_LINES]))
    return 0


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_loaded(loaded: LoadedPackage) -> None:
    """The load's counts, its diff against the graph, and the files it skipped (and why)."""
    print(loaded)
    print(loaded.diff_summary())
    for file, reason in loaded.skipped_reasons.items():
        print(f"skipped {file}: {reason}")


def _load(args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise UserError(f"no such package or file: {args.path}")
    with _connect(args.uri) as db:
        try:
            loaded = load_python_package(db, args.path, prefix=args.prefix, replace=args.replace)
        except (ValueError, SourceConflictError) as err:  # a prefix that is no path
            raise UserError(_one_line(err)) from None
        _print_loaded(loaded)
    return 0


def _llm(args: argparse.Namespace) -> Any:
    """The offline summariser, or an ``OpenAIChat`` for ``--model``."""
    if args.model is None:
        if args.base_url is not None:
            raise UserError("--base-url needs --model NAME")
        return ExtractiveSummarizer()
    from .openai_chat import LOCAL_PLACEHOLDER_KEY, OpenAIChat

    # An estimate calls nothing: it needs the model's identity, never a key.
    key = LOCAL_PLACEHOLDER_KEY if getattr(args, "dry_run", False) else None
    try:
        return OpenAIChat(args.model, base_url=args.base_url, api_key=key)
    except (ImportError, ValueError) as err:
        raise UserError(_one_line(err)) from None


def _process(args: argparse.Namespace) -> int:
    _check_writable(args.out)
    if args.max_cost is not None and args.prices is None:
        raise UserError("--max-cost needs --prices PROMPT,COMPLETION to know what a call costs")
    llm = _llm(args)
    with _connect(args.uri, args) as db:
        processor = RecursiveDFSProcessor(
            db,
            llm,
            schema=schema_of(args),
            max_workers=args.workers,
            timeout=args.timeout,
            scope=args.scope,
            progress=not args.no_progress,
            requests_per_minute=args.requests_per_minute,
            prices=args.prices,
            max_cost_usd=args.max_cost,
        )
        args.processor = processor
        try:
            if args.dry_run:
                estimate = processor.estimate(args.path, use_hierarchy=not args.calls)
                _print_frame(estimate, "")
                return 0
            text = processor.process_node(args.path, use_hierarchy=not args.calls, force=args.force)
        except (NodeNotFoundError, AmbiguousNodeError, AmbiguousTenantError) as err:
            raise UserError(_one_line(err)) from None
        print(text)
        session = processor.last_session
        if session is None:
            return 0
        print(_session_line(session), file=sys.stderr)
        if args.out is not None:
            print(f"report written to {_write_report(session, args.out)}", file=sys.stderr)
        if "children not shown" in text:
            print(
                f"{PROG}: the text above is cut at {processor.max_text_chars} characters; "
                f"`{PROG} export {args.path} --out DIR` writes all of it",
                file=sys.stderr,
            )
        failed = session.counts["failed"]
        if failed:
            path, error = session.recent_errors[-1]
            print(
                f"{PROG}: {failed} of {session.total} nodes failed (e.g. {path}: {error})",
                file=sys.stderr,
            )
            return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    out: Path = args.out.expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot export to {out}: it is not a directory")
    with _connect(args.uri, args) as db:
        try:
            pages = export_markdown(db, args.root, out, force=args.force, schema=schema_of(args))
        except (LookupError, ValueError, ExportRefusedError) as err:
            raise UserError(_one_line(err)) from None
        except OSError as err:
            raise UserError(f"cannot write to {out}: {_one_line(err)}") from None
    print(f"{len(pages)} pages written under {out.resolve()} (start at index.md)")
    return 0


def _sessions(args: argparse.Namespace) -> int:
    try:  # bad input is refused before any database is started or reached
        args.stale_after = parse_duration(args.stale_after)
    except ValueError as err:
        raise UserError(_one_line(err)) from None
    with _connect(args.uri, args if args.action == "list" else None) as db:
        try:
            if args.action == "list":
                found = list_sessions(db, stale_after=args.stale_after, schema=schema_of(args))
                _print_frame(found, "no sessions")
                return 0
            if args.session is not None:
                if args.dry_run:
                    found = list_sessions(db)
                    found = found.loc[found["session_id"] == args.session]
                    if found.empty:
                        raise UserError(f"no such session {args.session} in the graph")
                    _print_frame(found, "")
                    return 0
                removed = cleanup_session(db, args.session)
                print(f"removed session {args.session} from {removed} nodes")
                return 0
            frame = cleanup_leftovers(
                db, stale_after=args.stale_after, dry_run=args.dry_run, force=args.force
            )
        except (ValueError, SessionNotFoundError) as err:  # a malformed or unknown id
            raise UserError(_one_line(err)) from None
        _print_frame(frame, "nothing to clean up")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo,
    "load": _load,
    "process": _process,
    "export": _export,
    "sessions": _sessions,
    "db": run_db,
}


def _undecodable(argv: list[str]) -> str | None:
    """The first argument that is not valid text (bytes the OS could not decode), if any."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg
    return None


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings (a scope beyond the root's subtree) as one line, without source lines."""
    print(f"{PROG}: warning: {_one_line(str(message))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (argparse usage errors exit 2 itself)."""
    bad = _undecodable(sys.argv[1:] if argv is None else argv)
    if bad is not None:
        print(f"{PROG}: error: an argument is not valid text: {bad!a}", file=sys.stderr)
        return 2
    args = argparse.Namespace()
    try:
        with signals_interrupt(), warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            args = build_parser().parse_args(argv)
            return _run_command(args)
    except SignalInterrupt as err:  # the session in flight has removed its state
        print(f"{PROG}: {err}{_interrupted(args)}", file=sys.stderr)
        return 128 + err.signum


def _interrupted(args: argparse.Namespace) -> str:
    """What an interrupt left: a session, if one had started, has removed its state."""
    processor = getattr(args, "processor", None)
    if getattr(processor, "last_session", None) is None:
        return " before any session started; nothing was written"
    return "; the running session removed its state"


def _run_command(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except NodeNotFoundError as err:
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except TimeoutError as err:
        print(f"{PROG}: timed out: {_one_line(err)}", file=sys.stderr)
        return 1
    except BudgetExceededError as err:
        print(f"{PROG}: budget reached: {_one_line(err)}", file=sys.stderr)
        return 1
    except SessionCleanupError as err:
        print(f"{PROG}: cleanup failed: {_one_line(err)}", file=sys.stderr)
        return 1
    except GraphDBError as err:
        print(f"{PROG}: database error: {_one_line(err)}", file=sys.stderr)
        return 1
    except SignalInterrupt:
        raise
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted{_interrupted(args)}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
