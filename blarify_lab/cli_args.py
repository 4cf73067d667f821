"""The ``blarify-lab`` command line's arguments: the parser, its value types and defaults."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NoReturn

from .cli_db import add_db_parser
from .db import URI_ENV_VAR
from .detection import SCHEMA_CHOICES, schema_named
from .leftovers import parse_duration
from .schema import GraphSchema

__all__ = [
    "DEMO_REPORT",
    "PROG",
    "add_schema_arguments",
    "build_parser",
    "duration",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "prices",
    "schema_of",
]

PROG = "blarify-lab"
DEMO_REPORT = "blarify_lab_demo_report.csv"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def prices(text: str) -> dict[str, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"use PROMPT,COMPLETION in USD per million, got {text!r}")
    try:
        prompt, completion = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not two numbers: {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in (prompt, completion)):
        raise argparse.ArgumentTypeError(f"prices must be finite and >= 0, got {text!r}")
    return {"prompt": prompt, "completion": completion}


def duration(text: str) -> float:
    """Seconds from ``90``, ``90.5``, ``90s``, ``15m``, ``2h``: finite and more than 0."""
    problem = f"must be a finite duration more than 0 (seconds, or e.g. 90s, 15m, 2h), got {text!r}"
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(problem) from None
    if seconds is None or not math.isfinite(seconds) or not seconds > 0:
        raise argparse.ArgumentTypeError(problem)
    return seconds


def _finite(text: str, *, zero_allowed: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
        least = "0 or more" if zero_allowed else "more than 0"
        raise argparse.ArgumentTypeError(f"must be a finite number {least}, got {text}")
    return value


def positive_float(text: str) -> float:
    return _finite(text, zero_allowed=False)


def non_negative_float(text: str) -> float:
    return _finite(text, zero_allowed=True)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Document a code graph bottom-up, one isolated session at a time.",
        epilog=(
            "Commands document with the offline extractive summariser unless `process "
            "--model NAME` names a model on an OpenAI-compatible server. Exit codes: 0 done, "
            "1 the work failed (a node failed, a timeout, the budget, the database), 2 bad "
            "input, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    uri_help = f"database URI (default: ${URI_ENV_VAR}, else the embedded database)"

    demo = sub.add_parser(
        "demo",
        help="document a real Python package on a throwaway embedded database",
        description=(
            "Load a Python package into a throwaway embedded FalkorDB (never your default "
            "graph, whatever $BLARIFY_LAB_URI says), document it offline with a progress bar, "
            "print the summary, write the per-node report and show the root's documentation."
        ),
    )
    demo.add_argument(
        "--package", type=Path, help="package directory or file (default: blarify_lab itself)"
    )
    demo.add_argument("--workers", type=positive_int, default=8, help="worker threads (8)")
    demo.add_argument(
        "--out", type=Path, default=Path(DEMO_REPORT), help=f"report CSV (./{DEMO_REPORT})"
    )
    demo.add_argument(
        "--latency",
        type=non_negative_float,
        default=0.0,
        help="seconds each simulated LLM call takes, to watch the scheduling (default 0)",
    )

    load = sub.add_parser("load", help="load a Python package or file into the database")
    load.add_argument("path", type=Path, help="a package directory or a single .py file")
    load.add_argument("--uri", help=uri_help)
    load.add_argument("--prefix", help="path prefix of the loaded nodes (default: /<name>)")
    load.add_argument(
        "--replace",
        action="store_true",
        help="replace a root loaded from another directory even if that deletes documented "
        "nodes (default: refuse)",
    )

    process = sub.add_parser(
        "process",
        help="run one session from the node at PATH",
        description=(
            "Document the node at PATH and everything under it; prints the documentation of "
            "PATH. Without --model the offline extractive summariser writes it; with --model, "
            "an OpenAI-compatible server (OpenAI, Ollama, vLLM, LM Studio, llama.cpp; the key "
            "comes from $OPENAI_API_KEY). Stored documentation whose inputs have not changed "
            "is reused: a re-run pays only for what changed. --dry-run prints the estimate."
        ),
    )
    process.add_argument("path", help="the node's path, e.g. /mypkg or /mypkg/mod.py::func")
    process.add_argument("--uri", help=uri_help)
    add_schema_arguments(process)
    process.add_argument("--workers", type=positive_int, default=5, help="worker threads (5)")
    process.add_argument(
        "--timeout",
        type=duration,
        help="the whole session's limit: seconds or e.g. 90s, 15m, 2h (default: none)",
    )
    process.add_argument("--calls", action="store_true", help="follow CALLS, not CONTAINS")
    process.add_argument(
        "--scope",
        choices=("graph", "subtree"),
        default="subtree",
        help="subtree: only what PATH reaches (default); graph: every code node of the graph",
    )
    process.add_argument("--out", type=Path, help="write the per-node report to this CSV")
    process.add_argument("--no-progress", action="store_true", help="no progress bar")
    llm = process.add_argument_group("a real model")
    llm.add_argument(
        "--model",
        help="the model's name, e.g. gpt-4o-mini or llama3.1 (default: none, the offline "
        "summariser)",
    )
    llm.add_argument(
        "--base-url",
        help="an OpenAI-compatible server, e.g. http://localhost:11434/v1 (default: OpenAI)",
    )
    llm.add_argument(
        "--requests-per-minute", type=positive_float, help="pace the calls (default: unpaced)"
    )
    llm.add_argument(
        "--prices",
        type=prices,
        metavar="PROMPT,COMPLETION",
        help="USD per million prompt and completion tokens, e.g. 0.15,0.60: gives costs",
    )
    llm.add_argument(
        "--max-cost", type=positive_float, metavar="USD", help="stop once this is spent"
    )
    process.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the run would cost (nodes, cached, calls, tokens) and run nothing",
    )
    process.add_argument(
        "--force",
        action="store_true",
        help="ask the LLM about every node again (default: reuse stored documentation whose "
        "inputs have not changed)",
    )

    export = sub.add_parser(
        "export",
        help="write the stored documentation under ROOT as a Markdown tree",
        description=(
            "Write the documentation stored under ROOT as Markdown that mirrors the code: an "
            "index.md per folder, a page per file with its classes and functions, linked. "
            "The folder must be new or empty, unless --force."
        ),
    )
    export.add_argument("root", help="the root's path, e.g. /mypkg")
    export.add_argument("--out", type=Path, required=True, help="the directory to write into")
    export.add_argument("--uri", help=uri_help)
    export.add_argument(
        "--force",
        action="store_true",
        help="export into a folder that is not empty: replace or remove only the pages an "
        "earlier export wrote there, touch nothing else (default: refuse)",
    )
    add_schema_arguments(export)

    sessions = sub.add_parser("sessions", help="list or clean up processing sessions")
    ssub = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = ssub.add_parser(
        "list", help="sessions found in the graph: active, stale, orphaned, invalid"
    )
    ls.add_argument("--uri", help=uri_help)
    ls.add_argument("--stale-after", help="e.g. 90s, 15m (default: three heartbeats)")
    add_schema_arguments(ls)
    clean = ssub.add_parser("cleanup", help="remove stale and orphaned sessions, or one by id")
    clean.add_argument("--uri", help=uri_help)
    which = clean.add_mutually_exclusive_group()
    which.add_argument("--session", help="the id of one session to remove")
    which.add_argument("--stale-after", help="e.g. 90s, 15m (default: three heartbeats)")
    clean.add_argument("--dry-run", action="store_true", help="show what would be removed")
    clean.add_argument("--force", action="store_true", help="remove active sessions too")
    add_db_parser(sub)
    return parser


def add_schema_arguments(parser: argparse.ArgumentParser) -> None:
    """``--schema {auto,default,blarify} --entity-id ID --repo-id ID``."""
    group = parser.add_argument_group("the graph's schema")
    group.add_argument(
        "--schema",
        choices=SCHEMA_CHOICES,
        default="auto",
        help="how the graph is shaped: a graph this tool loaded (default), one blarify built "
        "(blarify), or found out from the graph (auto, the default)",
    )
    group.add_argument("--entity-id", help="a blarify graph's tenant: its entityId")
    group.add_argument("--repo-id", help="a blarify graph's tenant: its repoId")


def schema_of(args: argparse.Namespace) -> GraphSchema | None:
    """The schema the command line asks for (``None``: detected from the graph)."""
    return schema_named(
        getattr(args, "schema", None),
        getattr(args, "entity_id", None),
        getattr(args, "repo_id", None),
    )
