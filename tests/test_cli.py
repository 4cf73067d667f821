"""The blarify-lab command line: the demo, processing, sessions, and exit codes for bad input."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from blarify_lab import queries
from blarify_lab.cli import main

from .helpers import make_tree


@pytest.fixture
def graph(falkordb_server: Any) -> Any:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    db = falkordb_server.manager(name)
    make_tree(db, 3, 2)
    yield db, f"{falkordb_server.uri}/{name}"
    db.delete_graph()
    db.close()


def test_demo_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BLARIFY_LAB_URI"}
    out = subprocess.run(
        [sys.executable, "-m", "blarify_lab.cli", "demo", "--out", str(tmp_path / "r.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Summary" in out.stdout and "completed" in out.stdout
    assert "Session state left in the graph: 0 sessions" in out.stdout
    report = pd.read_csv(tmp_path / "r.csv")
    assert len(report) > 100 and set(report["status"]) == {"completed"}
    assert "/blarify_lab\nFolder `blarify_lab`." in out.stdout
    assert "100%" in out.stderr, "a progress bar is shown"


def test_process_prints_documentation_and_writes_report(
    graph: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, uri = graph
    code = main(
        [
            "process",
            "/root",
            "--uri",
            uri,
            "--workers",
            "2",
            "--out",
            str(tmp_path / "r.csv"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert out.out.startswith("/root\n")
    shown = re.sub(r"//:[^@]*@", "//", uri)  # the password is never printed
    assert f"blarify-lab: database {shown}, schema default\n" in out.err, "names the database"
    assert "1 LLM calls" not in out.err and "10 LLM calls" in out.err
    assert len(pd.read_csv(tmp_path / "r.csv")) == 10


def test_sessions_list_and_cleanup(graph: Any, capsys: pytest.CaptureFixture[str]) -> None:
    db, uri = graph
    sid = uuid.uuid4().hex
    db.run_query(queries.initialize_processing_session_query(sid), {"session_id": sid})
    assert main(["sessions", "list", "--uri", uri]) == 0
    listed = capsys.readouterr().out
    assert sid in listed and "orphaned" in listed
    assert main(["sessions", "cleanup", "--uri", uri, "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out
    assert main(["sessions", "cleanup", "--uri", uri, "--session", sid]) == 0
    assert "from 10 nodes" in capsys.readouterr().out
    assert main(["sessions", "list", "--uri", uri]) == 0
    assert "no sessions" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["process", "/nope", "--no-progress"], "no code node has path '/nope'"),
        (["process", "/root", "--uri", "mysql://x"], "unsupported database URI"),
        (["sessions", "list", "--uri", "falkordb://127.0.0.1:1/g"], "cannot reach FalkorDB"),
        (["sessions", "cleanup", "--session", "abc}"], "invalid session id"),
        (["sessions", "list", "--stale-after", "soon"], "invalid duration"),
        (["load", "/no/such/dir"], "no such package"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    graph: Any, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, uri = graph
    if "--uri" not in argv and argv[0] in ("process", "sessions"):
        argv = [*argv, "--uri", uri]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    lines = err.splitlines()
    assert "Traceback" not in err and lines[-1].startswith("blarify-lab: error:")
    assert len(lines) == 1 or (len(lines) == 2 and lines[0].startswith("blarify-lab: database "))


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["process", "/x", "--workers", "0"])
    assert info.value.code == 2


def test_cleanup_of_an_unknown_session_says_so_and_exits_2(
    graph: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db, uri = graph
    unknown = uuid.uuid4().hex
    for extra in ([], ["--dry-run"]):
        assert main(["sessions", "cleanup", "--uri", uri, "--session", unknown, *extra]) == 2
        out = capsys.readouterr()
        assert f"error: no such session {unknown}" in out.err and "removed" not in out.out
        assert len([line for line in out.err.splitlines() if "error" in line]) == 1
    sid = uuid.uuid4().hex
    db.run_query(queries.initialize_processing_session_query(sid), {"session_id": sid})
    assert main(["sessions", "cleanup", "--uri", uri, "--session", sid]) == 0
    assert "from 10 nodes" in capsys.readouterr().out
    assert main(["sessions", "cleanup", "--uri", uri, "--session", sid]) == 2, "gone now"
