"""``blarify-lab db``: what the embedded database holds, compacting it, backing it up."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import GraphDBError
from .maintenance import backup, compact, database_info

__all__ = ["add_db_parser", "run_db"]

DESCRIPTION = (
    "The embedded database's data directory (--data-dir, default $BLARIFY_LAB_DATA_DIR, else "
    "~/.cache/blarify_lab/falkordb; $BLARIFY_LAB_URI plays no part). `db` or `db info`: its "
    "size, code nodes, stored descriptions and last compaction. `db compact`: rewrite the "
    "append-only file from the graph as it is (it is also compacted by itself as it grows, and "
    "when its last user exits). `db backup PATH`: a consistent copy as a new data directory "
    "PATH; open it with `BLARIFY_LAB_DATA_DIR=PATH blarify-lab ...` or "
    "`connect(data_dir=PATH)`, or restore it by moving it in place of the data directory while "
    "no process uses that one."
)


def add_db_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``db [info | compact | backup PATH] [--data-dir DIR]`` to the command line."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="the data directory (default: $BLARIFY_LAB_DATA_DIR, else ~/.cache/...)",
    )
    db = sub.add_parser(
        "db",
        parents=[where],
        help="the embedded database: size and contents, compact, backup",
        description=DESCRIPTION,
    )
    actions = db.add_subparsers(dest="db_action", metavar="ACTION")
    actions.add_parser("info", parents=[where], help="size, nodes, documentation (default)")
    actions.add_parser("compact", parents=[where], help="compact the append-only file now")
    saved = actions.add_parser(
        "backup", parents=[where], help="write a consistent copy as a new data directory"
    )
    saved.add_argument("path", type=Path, help="a new (or empty) directory")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    value, unit = n / 1024, "KB"
    for bigger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:,.1f} {unit}"


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def run_db(args: argparse.Namespace) -> int:
    """Run ``blarify-lab db ...``; errors are one line on stderr (exit 2: bad input, 1: the
    database failed)."""
    data_dir: Path | None = getattr(args, "data_dir", None)
    action = getattr(args, "db_action", None) or "info"
    try:
        if action == "compact":
            done = compact(data_dir)
            print(
                f"compacted {done.data_dir} in {done.seconds:.2f} s: "
                f"{_size(done.before_bytes)} -> {_size(done.after_bytes)}"
            )
        elif action == "backup":
            saved = backup(args.path, data_dir)
            print(
                f"backup written to {saved.path} ({_size(saved.size_bytes)}, {saved.nodes} "
                f"nodes, {saved.documentation} descriptions); open it with "
                f"BLARIFY_LAB_DATA_DIR={saved.path}"
            )
        else:
            info = database_info(data_dir)
            rows = [
                ("data directory", str(info.data_dir)),
                (
                    "size",
                    f"{_size(info.size_bytes)} (append-only file: {_size(info.aof_base_bytes)} "
                    f"base + {_size(info.aof_incremental_bytes)} since)",
                ),
                ("nodes", f"{info.nodes:,}"),
                ("documentation", f"{info.documentation:,}"),
                ("last compaction", _when(info.last_compaction)),
            ]
            for name, value in rows:
                print(f"{name:<16}{value}")
    except FileExistsError as err:
        print(f"blarify-lab: error: {err}", file=sys.stderr)
        return 2
    except (GraphDBError, OSError) as err:
        print(f"blarify-lab: database error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    return 0
