"""Helpers of the embedded-server tests: which redis-server serves a directory."""

from __future__ import annotations

import os
from pathlib import Path


def redis_servers_of(data_dir: str | os.PathLike[str]) -> list[int]:
    """Pids of the redis-server processes whose current directory is ``data_dir``.

    The embedded server runs in its data directory, so this counts the servers of one
    directory whatever else runs on the machine (other test runs included).
    """
    target = Path(data_dir).resolve()
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if "redis-server" in exe and Path(os.readlink(proc / "cwd")) == target:
                found.append(int(proc.name))
        except OSError:
            continue
    return found
