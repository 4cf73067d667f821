"""Issue 14 hardening: cleanup nothing can skip, leftovers judged right, hostile and huge
input, and tests that guard several sessions at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

import blarify_lab as bl
from blarify_lab.db import GraphDB

from .helpers import (
    QueryRecorder,
    make_tree,
    no_leftovers,
    session_nodes,
    wait_for,
)

# ------------------------------------------------------------------------------- the CLI


def _cli(
    env: dict[str, str], *args: str | bytes, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blarify_lab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


SLOW_CLI = textwrap.dedent(
    """
    import runpy, sys, time
    from blarify_lab.llm import ExtractiveSummarizer
    real = ExtractiveSummarizer.get_completion
    def slow(self, prompt):
        time.sleep(0.05)
        return real(self, prompt)
    ExtractiveSummarizer.get_completion = slow
    sys.argv = ["blarify_lab.cli", *sys.argv[1:]]
    runpy.run_module("blarify_lab.cli", run_name="__main__", alter_sys=True)
    """
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_cli_cleans_up_on_sigterm_and_sighup(
    db_manager: GraphDB, db_env: dict[str, str], signum: int, code: int
) -> None:
    """``blarify-lab process`` (its real main(), run as ``__main__``, with a summariser slowed to
    50 ms a node) killed by SIGTERM / SIGHUP once its session is registered exits 143 / 129
    and leaves no session state."""
    make_tree(db_manager, 20, 3)
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "process", "/root", "--workers", "2", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=db_env,
    )
    try:
        assert wait_for(lambda: session_nodes(db_manager) > 0, timeout=30), "session started"
        assert list(bl.list_sessions(db_manager)["state"]) == ["active"]
        child.send_signal(signum)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert child.returncode == code, err
    assert err.strip().splitlines()[-1].startswith("blarify-lab: received SIG"), err
    assert "Traceback" not in err
    assert no_leftovers(db_manager)


def test_cli_restores_the_previous_signal_handlers(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    from blarify_lab.cli import main

    make_tree(db_manager, 2, 1)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    assert main(["sessions", "list", "--uri", db_env["BLARIFY_LAB_URI"]]) == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Infinity"])
def test_cli_rejects_a_timeout_that_is_not_finite(
    db_manager: GraphDB, db_env: dict[str, str], value: str
) -> None:
    make_tree(db_manager, 2, 1)
    with QueryRecorder(db_manager) as sent:
        out = _cli(db_env, "process", "/root", f"--timeout={value}", "--no-progress")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "finite" in out.stderr
    assert sent.queries == []  # (this process sends none; the child's writes would show here:)
    assert no_leftovers(db_manager)


def test_cli_rejects_undecodable_arguments_in_one_line(db_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "blarify_lab.cli", "process", b"/\xff\xfe"],
        capture_output=True,
        env=db_env,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.decode("utf-8", "replace").strip().splitlines()
    assert len(lines) == 1, lines
    assert "not valid text" in lines[0]
