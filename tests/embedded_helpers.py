"""Helpers of the embedded-server tests: which redis-server serves a directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


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


CHILD_CODE = """
import json, sys
import blarify_lab as bl
from blarify_lab.embedded import EmbeddedFalkorDB

where = sys.argv[1]
db = bl.connect(temporary=True) if where == "-" else bl.connect(data_dir=where)
server = next(iter(EmbeddedFalkorDB._servers.values()))
info = {"port": db.port, "pid": server.pid, "supervisor_pid": server.supervisor_pid,
        "data_dir": str(server.data_dir)}
print(json.dumps(info), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "close":
        db.close()
        print("closed", flush=True)
    elif command == "exit":
        sys.exit(0)
    elif command == "write":
        db.run_query("CREATE (:FILE {path: '/child.py'})", {})
        print("written", flush=True)
"""


class Child:
    """A process that connects to the embedded database of ``data_dir`` (``"-"``: a temporary
    one) and then obeys commands on its stdin: ``write``, ``close``, ``exit``."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLARIFY_LAB_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.readline()
        if not line:
            self.kill()
            raise AssertionError(f"the child failed: {self.proc.communicate()[1]}")
        self.info: dict[str, Any] = json.loads(line)

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def ask(self, command: str) -> str:
        self.send(command)
        return self.readline()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
