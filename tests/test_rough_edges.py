"""Rough edges a new user met: what the report, the timeline and the messages say."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from blarify_lab import RecursiveDFSProcessor
from blarify_lab.cli import main
from blarify_lab.db import GraphDB

from .helpers import make_tree, slow_llm


def _peak_busy(starts: list[float], ends: list[float]) -> int:
    level = peak = 0
    for _, step in sorted([(t, 1) for t in starts] + [(t, -1) for t in ends]):
        level += step
        peak = max(peak, level)
    return peak


def test_the_timeline_never_shows_more_busy_workers_than_max_workers(db_manager: GraphDB) -> None:
    make_tree(db_manager, 12, 3)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.02), max_workers=4, progress=False)
    proc.process_node("/root")
    assert proc.last_session is not None
    report = proc.last_session.report().dropna(subset=["started_at", "finished_at"])
    assert len(report) == 49
    starts = [t.timestamp() for t in report["started_at"]]
    ends = [t.timestamp() for t in report["finished_at"]]
    assert _peak_busy(starts, ends) <= 4, "a node's time is the time a worker spent on it"
    assert bool((report["duration_s"] >= 0.02 * 0.9).all()), "each node includes its LLM call"


def test_the_extractive_summary_ends_a_docstring_sentence_before_the_next() -> None:
    from blarify_lab.llm import ExtractiveSummarizer
    from blarify_lab.prompts import ChildText, NodeContent, build_prompt

    source = 'class JSONDecoder:\n    """Implementation of JSONDecoder\n\n    More."""\n'
    node = NodeContent("/json/decoder.py::JSONDecoder", ("CLASS",), "JSONDecoder", source)
    child = ChildText("/json/decoder.py::JSONDecoder.decode", "Function `decode`.", None)
    text = ExtractiveSummarizer().get_completion(build_prompt(node, [child], max_text_chars=4000))
    assert "Implementation of JSONDecoder. Contains 1:" in text, text


def test_a_bad_stale_after_is_refused_before_any_database_is_used(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["sessions", "list"], ["sessions", "cleanup"]):
        assert main([*argv, "--stale-after", "5x", "--uri", "falkordb://127.0.0.1:9/none"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("blarify-lab: error: invalid duration '5x'"), err
        assert "database" not in err, "refused before any database is reached"


def test_sessions_list_fits_a_terminal_and_prints_no_none(
    falkordb_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"edges_{uuid.uuid4().hex[:8]}"
    db = falkordb_server.manager(name)
    try:
        make_tree(db, 3, 2)
        register = "SET n.processing_status_" + uuid.uuid4().hex + " = 'pending'"
        db.run_query("MATCH (n) WHERE n.path = '/root' " + register, {})  # an orphan
        assert main(["sessions", "list", "--uri", f"{falkordb_server.uri}/{name}"]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert len(lines) == 2 and "orphaned" in lines[1], out
        assert max(map(len, lines)) <= 120, out
        assert "None" not in out and "NaN" not in out and "NaT" not in out, out
    finally:
        db.delete_graph()
        db.close()


def test_ctrl_c_before_connecting_does_not_speak_of_a_session(tmp_path: Path) -> None:
    silent = socket.socket()  # accepts connections and never answers: connecting hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "BLARIFY_LAB_URI"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "blarify_lab.cli", "sessions", "list",
             "--uri", f"falkordb://127.0.0.1:{port}/g"],
            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        silent.accept()  # the CLI is connecting now
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        silent.close()
    assert proc.returncode == 130, err
    assert "interrupted before any session started" in err, err
    assert "removed its state" not in err, err


def test_a_graph_scope_estimate_warns_like_the_session_would(db_manager: GraphDB) -> None:
    from blarify_lab.scheduler import ScopeWarning

    make_tree(db_manager, 3, 2)
    db_manager.run_query("CREATE (:FILE {path: '/elsewhere.py', name: 'elsewhere.py'})", {})
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0), progress=False)
    with pytest.warns(ScopeWarning, match=r"all 11 code nodes .* 1 lie outside the 10"):
        assert int(proc.estimate("/root")["nodes"].iloc[0]) == 11
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScopeWarning)
        assert int(proc.estimate("/root", scope="subtree")["nodes"].iloc[0]) == 10
