"""The forecast learns from past sessions: call times and lengths stored with documentation."""

from __future__ import annotations

import re
import time

import pytest

import blarify_lab as bl
from blarify_lab.db import GraphDB
from blarify_lab.prompts import parse_prompt
from blarify_lab.usage import estimate_tokens

from .helpers import QueryRecorder, session_nodes

ANSWER = "Parses one line of the input and returns the fields it found. " * 3
CALL_S = 0.05


class SleepyLLM:
    """Takes ``CALL_S`` seconds per call and always answers ``ANSWER``."""

    model = "sleepy-forecast"

    def __init__(self) -> None:
        self.paths: list[str] = []

    def get_completion(self, prompt: str) -> str:
        self.paths.append(parse_prompt(prompt).path)
        time.sleep(CALL_S)
        return ANSWER


def _tree(db: GraphDB, root: str, children: int, grandchildren: int) -> int:
    db.run_query(
        "CREATE (r:FOLDER {path: $root}) WITH r UNWIND range(1, $n) AS i "
        "CREATE (r)-[:CONTAINS]->(c:FILE {path: $root + '/c' + toString(i)}) "
        "WITH c UNWIND range(1, $m) AS j "
        "CREATE (c)-[:CONTAINS]->(:FUNCTION {path: c.path + '/g' + toString(j), "
        "text: 'def g(): return ' + toString(j)})",
        {"root": root, "n": children, "m": grandchildren},
    )
    return 1 + children + children * grandchildren


def test_the_forecast_uses_what_past_sessions_measured(db_manager: GraphDB) -> None:
    first_total = _tree(db_manager, "/a", 4, 3)
    second_total = _tree(db_manager, "/b", 6, 4)
    llm = SleepyLLM()
    proc = bl.RecursiveDFSProcessor(db_manager, llm, max_workers=4, progress=False, scope="subtree")
    before = proc.estimate("/b").iloc[0]
    assert before["wall_s_basis"] == "assumed" and before["completion_tokens_basis"] == "assumed"
    assert before["completion_tokens"] == 150 * second_total

    proc.process_node("/a")
    stored = db_manager.run_query(
        "MATCH (d:DOCUMENTATION) WHERE d.model = $m RETURN d.latency_s AS s, "
        "d.prompt_tokens AS p, d.completion_tokens AS c, d.attempts AS a",
        {"m": proc.model},
    )
    assert len(stored) == first_total
    assert all(r["s"] >= CALL_S * 0.9 and r["p"] > 0 and r["a"] == 1 for r in stored)
    assert {r["c"] for r in stored} == {estimate_tokens(ANSWER)}

    after = proc.estimate("/b").iloc[0]
    assert after["wall_s_basis"] == "measured" and after["completion_tokens_basis"] == "measured"
    assert after["llm_calls"] == second_total
    assert after["completion_tokens"] == estimate_tokens(ANSWER) * second_total
    start = time.perf_counter()
    proc.process_node("/b")
    wall = time.perf_counter() - start
    session = proc.last_session
    assert session is not None and session.completion_tokens == after["completion_tokens"]
    # 31 calls of 50 ms on 4 workers, three levels: the forecast is the scheduler's own bound
    assert after["wall_s"] >= CALL_S * second_total / 4
    assert after["wall_s"] <= wall * 1.2
    assert session_nodes(db_manager) == 0


def test_the_progress_bar_shows_the_schedulers_eta(
    db_manager: GraphDB, capsys: pytest.CaptureFixture[str]
) -> None:
    total = _tree(db_manager, "/e", 5, 4)
    proc = bl.RecursiveDFSProcessor(db_manager, SleepyLLM(), max_workers=2, progress=True)
    proc.process_node("/e")
    err = capsys.readouterr().err
    assert f"{total}/{total}" in err
    etas = [float(m) for m in re.findall(r"eta=([0-9.]+)s", err)]
    assert etas, "the bar shows the scheduler's ETA"
    # 26 calls of 50 ms on 2 workers: never more than the whole session's work
    assert max(etas) <= total * CALL_S * 2


def test_a_parent_starts_without_a_round_trip_after_its_last_child(db_manager: GraphDB) -> None:
    """On a chain only the leaf is claimed by a query: every parent was read ahead with its
    child and starts when the child finishes; its in_progress mark follows in a later write."""
    levels = 30
    db_manager.run_query(
        "UNWIND range(0, $n - 1) AS i CREATE (:FUNCTION {path: '/k' + toString(i)})",
        {"n": levels},
    )
    db_manager.run_query(
        "MATCH (a:FUNCTION), (b:FUNCTION) WHERE toInteger(substring(b.path, 2)) = "
        "toInteger(substring(a.path, 2)) + 1 CREATE (a)-[:CONTAINS]->(b)",
        {},
    )
    llm = SleepyLLM()
    proc = bl.RecursiveDFSProcessor(db_manager, llm, max_workers=4, progress=False)
    with QueryRecorder(db_manager) as recorder:
        text = proc.process_node("/k0")
    assert text.startswith("/k0\n") and llm.paths == [f"/k{i}" for i in reversed(range(levels))]
    advances = [p for query, p in recorder.calls if "$ahead" in query]
    claimed = [n for p in advances for n in p["claim"]]
    started = [n for p in advances for n in p["started"]]
    read_ahead = [n for p in advances for n in p["ahead"]]
    assert len(claimed) == 1, "only the leaf waits for a claim"
    assert len(started) == len(read_ahead) == levels - 1
    assert sorted(started) == sorted(read_ahead)
    assert session_nodes(db_manager) == 0


class SizeBoundLLM:
    """Takes longer the longer its prompt (2 ms per 1,000 characters, at least 1 ms)."""

    model = "size-bound"

    def __init__(self) -> None:
        self.paths: list[str] = []

    def get_completion(self, prompt: str) -> str:
        self.paths.append(parse_prompt(prompt).path)
        time.sleep(0.001 + 0.002 * len(prompt) / 1000)
        return "Documented."


def test_chains_are_weighed_by_predicted_seconds_once_a_model_is_measured(
    db_manager: GraphDB,
) -> None:
    """Two leaves wait under one root with one worker: equal chains in nodes, so the first
    session takes them in arrival order; once this model's calls show that its time grows with
    the prompt, the leaf with the long source (the longer call) goes first."""
    db_manager.run_query(
        "CREATE (r:FOLDER {path: '/w'}) "
        "CREATE (r)-[:CONTAINS]->(:FUNCTION {path: '/w/small', text: 'def small(): pass'}) "
        "CREATE (r)-[:CONTAINS]->(:FUNCTION {path: '/w/large', text: $large})",
        {"large": "def large():\n" + "    x = 1\n" * 1500},
    )
    sizes = range(0, 6000, 400)  # what the model's line is fitted on: prompts of every size
    db_manager.run_query(
        "CREATE (r:FOLDER {path: '/fit'}) WITH r UNWIND $sizes AS n "
        "CREATE (r)-[:CONTAINS]->(:FUNCTION {path: '/fit/f' + toString(n), text: $line + "
        "reduce(s = '', i IN range(1, n / 20) | s + '# padding to size the prompt.\\n')})",
        {"sizes": list(sizes), "line": "def f(): pass\n"},
    )
    llm = SizeBoundLLM()
    proc = bl.RecursiveDFSProcessor(db_manager, llm, max_workers=1, progress=False, scope="subtree")
    proc.process_node("/w")
    assert llm.paths == ["/w/small", "/w/large", "/w"], "no measurement: arrival order"
    proc.process_node("/fit")  # this model's calls, stored with their times
    llm.paths.clear()
    proc.process_node("/w", force=True)
    assert llm.paths == ["/w/large", "/w/small", "/w"], "the longer call first"
    assert session_nodes(db_manager) == 0
