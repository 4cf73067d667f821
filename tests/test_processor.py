"""RecursiveDFSProcessor scenarios, on every backend."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.prompts import CYCLE_MARK, ERROR_MARK, parse_prompt
from blarify_lab.scheduler import ScopeWarning

from .helpers import QueryRecorder, registry_nodes, session_nodes


def _worker_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("blarify-")
        and "-session-" not in t.name
        and "heartbeat" not in t.name
        and "spawner" not in t.name
    ]


def _wait_threads_released(timeout: float = 5.0) -> list[threading.Thread]:
    deadline = time.monotonic() + timeout
    while _worker_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return _worker_threads()


class RecordingLLM:
    """Answers with the node's path line; records order, concurrency and threads."""

    def __init__(
        self, delay: float | tuple[float, float] = 0.0, fail_on: str | None = None
    ) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.order: list[str] = []
        self.threads: Counter[int] = Counter()
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.rng = random.Random(7)

    def get_completion(self, prompt: str) -> str:
        path = parse_prompt(prompt).path
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads[threading.get_ident()] += 1
            delay = self.rng.uniform(*self.delay) if isinstance(self.delay, tuple) else self.delay
        try:
            if delay:
                time.sleep(delay)
            if self.fail_on is not None and path == self.fail_on:
                raise RuntimeError(f"LLM refused {path}")
            return f"doc of {path}"
        finally:
            with self.lock:
                self.active -= 1
                self.order.append(path)


def _make_wide_tree(db: GraphDB, children: int, grandchildren: int) -> int:
    db.run_query(
        "CREATE (r:FOLDER {path: '/root'}) WITH r "
        "UNWIND range(1, $n) AS i CREATE (r)-[:CONTAINS]->(c:FILE {path: '/root/c' + toString(i)}) "
        "WITH c UNWIND range(1, $m) AS j "
        "CREATE (c)-[:CONTAINS]->(:FUNCTION {path: c.path + '/g' + toString(j)})",
        {"n": children, "m": grandchildren},
    )
    return 1 + children + children * grandchildren


def test_saturating_pool_reuses_at_most_max_workers_threads(db_manager: GraphDB) -> None:
    total = _make_wide_tree(db_manager, 50, 2)
    llm = RecordingLLM(delay=0.01)
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=10, progress=False)
    text = proc.process_node("/root")
    assert text.startswith("/root\ndoc of /root")
    assert len(llm.order) == total == 151
    assert llm.max_active <= 10
    assert len(llm.threads) <= 10
    assert max(llm.threads.values()) >= 5, "worker threads are reused many times"
    assert llm.max_active >= 5, "the pool is kept busy"
    assert _wait_threads_released() == []
    session = proc.last_session
    assert session is not None and session.status == "completed"
    assert session.counts["completed"] == total
    assert session_nodes(db_manager) == 0 and registry_nodes(db_manager) == 0


def _make_code_graph(db: GraphDB) -> None:
    db.run_query(
        "CREATE (f:FILE {path: '/file1.py', name: 'file1.py'}) "
        "CREATE (c:CLASS {path: '/file1.py::ClassA', name: 'ClassA', text: 'class ClassA: ...'}) "
        "CREATE (m1:FUNCTION {path: '/file1.py::ClassA.method1', name: 'method1', "
        "text: 'def method1(self): return helper()'}) "
        "CREATE (h:FUNCTION {path: '/file1.py::helper', name: 'helper', text: 'def helper(): return leaf()'}) "
        "CREATE (l:FUNCTION {path: '/file1.py::leaf', name: 'leaf', text: 'def leaf(): return 1'}) "
        "CREATE (f)-[:CONTAINS]->(c) CREATE (c)-[:CONTAINS]->(m1) "
        "CREATE (f)-[:CONTAINS]->(h) CREATE (f)-[:CONTAINS]->(l) "
        "CREATE (m1)-[:CALLS]->(h) CREATE (h)-[:CALLS]->(l)",
        {},
    )


def test_hierarchy_and_call_stack_results(db_manager: GraphDB) -> None:
    _make_code_graph(db_manager)
    llm = RecordingLLM()
    proc = RecursiveDFSProcessor(
        db_manager, llm, max_workers=3, progress=False, save_documentation=False
    )
    hierarchy = proc.process_node("/file1.py")
    assert hierarchy.startswith("/file1.py\n")
    assert "ClassA" in hierarchy and "method1" in hierarchy
    assert "helper" in hierarchy and "leaf" in hierarchy

    calls = proc.process_node("/file1.py::ClassA.method1", use_hierarchy=False)
    assert calls.startswith("/file1.py::ClassA.method1\n")
    assert "/file1.py::helper" in calls and "/file1.py::leaf" in calls
    assert "ClassA\n" not in calls.replace("ClassA.method1", ""), "no hierarchy in the call stack"
    # the call chain is documented callee-first
    order = llm.order[-5:]
    assert order.index("/file1.py::leaf") < order.index("/file1.py::helper")
    assert order.index("/file1.py::helper") < order.index("/file1.py::ClassA.method1")
    assert session_nodes(db_manager) == 0


def test_subtree_scope_documents_only_what_is_reachable(db_manager: GraphDB) -> None:
    _make_code_graph(db_manager)
    db_manager.run_query("CREATE (:FILE {path: '/other.py'})", {})
    llm = RecordingLLM()
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=2, progress=False)
    text = proc.process_node("/file1.py::ClassA", scope="subtree")
    assert sorted(llm.order) == ["/file1.py::ClassA", "/file1.py::ClassA.method1"]
    assert "method1" in text
    assert proc.last_session is not None and proc.last_session.total == 2


def test_strict_bottom_up_order_on_four_levels(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (r:FOLDER {path: '/r'}) WITH r UNWIND range(1, 3) AS i "
        "CREATE (r)-[:CONTAINS]->(a:FOLDER {path: '/r/' + toString(i)}) WITH a UNWIND range(1, 3) AS j "
        "CREATE (a)-[:CONTAINS]->(b:FILE {path: a.path + '/' + toString(j)}) WITH b UNWIND range(1, 2) AS k "
        "CREATE (b)-[:CONTAINS]->(:FUNCTION {path: b.path + '/' + toString(k)})",
        {},
    )
    llm = RecordingLLM(delay=(0.0, 0.01))
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=4, progress=False)
    proc.process_node("/r")
    position = {p: i for i, p in enumerate(llm.order)}
    assert llm.order[-1] == "/r", "the root is documented last"
    for path, pos in position.items():
        if path == "/r":
            continue
        parent = path.rsplit("/", 1)[0] or "/r"
        assert position[parent] > pos, f"{parent} documented before its child {path}"
    report = proc.last_session.report() if proc.last_session else None
    assert report is not None
    assert sorted(report["depth"].dropna().unique().tolist()) == [0, 1, 2, 3]


def test_independent_nodes_spread_over_workers_and_threads_released(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (:FOLDER {path: '/solo'}) WITH 1 AS x UNWIND range(1, 29) AS i "
        "CREATE (:FILE {path: '/n' + toString(i)})",
        {},
    )
    llm = RecordingLLM(delay=(0.1, 0.5))
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=5, progress=False)
    start = time.monotonic()
    proc.process_node("/solo")
    wall = time.monotonic() - start
    assert len(llm.order) == 30
    assert llm.max_active == 5
    assert wall < 30 * 0.5 / 5 + 2, "independent work runs in parallel"
    session = proc.last_session
    assert session is not None
    finished = sorted(r.finished_at for r in session.nodes.values() if r.finished_at is not None)
    assert finished[-1] - finished[0] > 0.5, "completions are spread over time"
    assert len({r.worker for r in session.nodes.values()}) == 5
    assert _wait_threads_released() == []


def test_call_cycle_is_broken_deterministically(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (a:FUNCTION {path: '/a'}) CREATE (b:FUNCTION {path: '/b'}) "
        "CREATE (c:FUNCTION {path: '/c'}) "
        "CREATE (a)-[:CALLS]->(b) CREATE (b)-[:CALLS]->(c) CREATE (c)-[:CALLS]->(a)",
        {},
    )
    results = []
    for _ in range(2):
        proc = RecursiveDFSProcessor(db_manager, RecordingLLM(), max_workers=3, progress=False)
        start = time.monotonic()
        text = proc.process_node("/a", use_hierarchy=False)
        assert time.monotonic() - start < 10
        results.append(text)
        session = proc.last_session
        assert session is not None
        assert session.counts["cycles"] == 1
        assert session.counts["completed"] == 3
        assert int(session.report()["cycle"].to_numpy().sum()) == 1
    assert results[0] == results[1], "cycle breaking is deterministic"
    assert CYCLE_MARK in results[0]
    assert len(results[0]) < 1000
    assert session_nodes(db_manager) == 0


def test_self_call_is_a_cycle_not_a_hang(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (a:FUNCTION {path: '/rec'}) CREATE (a)-[:CALLS]->(a)", {})
    proc = RecursiveDFSProcessor(db_manager, RecordingLLM(), max_workers=2, progress=False)
    text = proc.process_node("/rec", use_hierarchy=False)
    assert CYCLE_MARK in text


def test_one_failing_llm_call_among_three_children(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (p:FILE {path: '/p.py'}) WITH p UNWIND ['a', 'b', 'c'] AS x "
        "CREATE (p)-[:CONTAINS]->(:FUNCTION {path: '/p.py::' + x})",
        {},
    )
    llm = RecordingLLM(fail_on="/p.py::b")
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=3, progress=False)
    text = proc.process_node("/p.py")
    assert text.startswith("/p.py\ndoc of /p.py")
    assert ERROR_MARK in text and "LLM refused /p.py::b" in text
    assert "doc of /p.py::a" in text and "doc of /p.py::c" in text
    session = proc.last_session
    assert session is not None
    assert session.counts["failed"] == 1 and session.counts["completed"] == 3
    report = session.report().set_index("path")
    assert report.loc["/p.py::b", "status"] == "failed"
    assert "LLM refused" in str(report.loc["/p.py::b", "error"])
    assert session.recent_errors[-1][0] == "/p.py::b"


@pytest.mark.parametrize("answer", [None, 42, b"bytes", ["list"]])
def test_non_string_completion_is_a_node_error_naming_the_type(
    db_manager: GraphDB, answer: Any
) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/x.py'})", {})
    proc = RecursiveDFSProcessor(db_manager, lambda prompt: answer, max_workers=1, progress=False)
    text = proc.process_node("/x.py")
    assert ERROR_MARK in text
    assert type(answer).__name__ in text
    assert session_nodes(db_manager) == 0


def test_empty_completion_is_a_node_error(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/x.py'})", {})
    proc = RecursiveDFSProcessor(db_manager, lambda prompt: "  ", max_workers=1, progress=False)
    assert "empty" in proc.process_node("/x.py")


def test_missing_path_raises_before_any_state_is_written(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/there.py'})", {})
    proc = RecursiveDFSProcessor(db_manager, RecordingLLM(), progress=False)
    with (
        QueryRecorder(db_manager) as recorder,
        pytest.raises(bl.NodeNotFoundError, match=r"/not/there\.py"),
    ):
        proc.process_node("/not/there.py")
    seen = recorder.queries
    assert len(seen) == 1 and "SET" not in seen[0] and "CREATE" not in seen[0]
    assert session_nodes(db_manager) == 0 and registry_nodes(db_manager) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_workers": 0},
        {"max_workers": -1},
        {"max_workers": 1.5},
        {"timeout": 0},
        {"timeout": -3},
    ],
)
def test_bad_settings_raise_value_error(db_manager: GraphDB, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RecursiveDFSProcessor(db_manager, RecordingLLM(), **kwargs)


def test_bad_timeout_per_call_raises_before_writing(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/x.py'})", {})
    proc = RecursiveDFSProcessor(db_manager, RecordingLLM(), progress=False)
    with pytest.raises(ValueError):
        proc.process_node("/x.py", timeout=0)
    assert registry_nodes(db_manager) == 0


def test_plain_callable_and_langchain_style_providers(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/x.py'})", {})

    class Message:
        def __init__(self, content: str) -> None:
            self.content = content

    class ChatModel:
        def invoke(self, prompt: str) -> Message:
            return Message("from chat model")

    assert "from callable" in RecursiveDFSProcessor(
        db_manager, lambda p: "from callable", progress=False
    ).process_node("/x.py")
    assert "from chat model" in RecursiveDFSProcessor(
        db_manager, ChatModel(), progress=False
    ).process_node("/x.py")
    with pytest.raises(TypeError, match="not an LLM provider"):
        RecursiveDFSProcessor(db_manager, object(), progress=False)


def test_text_stays_bounded_on_big_graphs(db_manager: GraphDB) -> None:
    _make_wide_tree(db_manager, 300, 3)
    proc = RecursiveDFSProcessor(
        db_manager,
        lambda p: "a description " * 20,
        max_workers=8,
        progress=False,
        max_text_chars=3000,
    )
    text = proc.process_node("/root")
    assert len(text) <= 3000 + 200
    assert "children not shown" in text


def test_save_documentation_is_idempotent(db_manager: GraphDB) -> None:
    _make_code_graph(db_manager)
    proc = RecursiveDFSProcessor(db_manager, RecordingLLM(), max_workers=2, progress=False)
    for force in (False, True):
        proc.process_node("/file1.py", force=force)
    rows = db_manager.run_query(
        "MATCH (d:DOCUMENTATION)-[:DESCRIBES]->(n) "
        "RETURN n.path AS path, d.description AS description",
        {},
    )
    assert len(rows) == 5, "one documentation node per code node, even after two runs"
    docs = {r["path"]: r["description"] for r in rows}
    assert docs["/file1.py"] == "doc of /file1.py", "the LLM's text for that node alone"
    # documentation nodes never join a later session's scope
    llm = RecordingLLM()
    RecursiveDFSProcessor(db_manager, llm, progress=False).process_node("/file1.py", force=True)
    assert len(llm.order) == 5


def test_thousand_nodes_twenty_workers_high_utilisation(db_manager: GraphDB) -> None:
    total = _make_wide_tree(db_manager, 100, 10)
    llm = RecordingLLM(delay=0.02)
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=20, progress=False)
    proc.process_node("/root")
    assert len(llm.order) == total == 1101
    assert llm.max_active == 20
    session = proc.last_session
    assert session is not None
    summary = session.summary()
    # bound: 1101 * 20 ms / 20 workers = 1.1 s of work per worker
    assert float(summary["utilisation"].iloc[0]) > 0.6, summary.T
    assert _wait_threads_released() == []


def test_only_nodes_inside_a_cycle_are_marked(db_manager: GraphDB) -> None:
    """A caller blocked behind a cycle is documented normally, after it."""
    db_manager.run_query(
        "CREATE (m:FUNCTION {path: '/main'}) CREATE (p:FUNCTION {path: '/parse'}) "
        "CREATE (e:FUNCTION {path: '/expr'}) CREATE (t:FUNCTION {path: '/term'}) "
        "CREATE (x:FUNCTION {path: '/x'}) CREATE (y:FUNCTION {path: '/y'}) "
        "CREATE (m)-[:CALLS]->(p) CREATE (p)-[:CALLS]->(e) "
        "CREATE (e)-[:CALLS]->(t) CREATE (t)-[:CALLS]->(e) "
        "CREATE (m)-[:CALLS]->(x) CREATE (x)-[:CALLS]->(y) CREATE (y)-[:CALLS]->(x)",
        {},
    )
    llm = RecordingLLM()
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=2, progress=False)
    text = proc.process_node("/main", use_hierarchy=False)
    session = proc.last_session
    assert session is not None
    report = session.report().set_index("path")
    marked = {r.path for r in session.nodes.values() if r.cycle}
    assert len(marked) == 2, "one node per cycle, both cycles broken at once"
    assert marked <= {"/expr", "/term", "/x", "/y"}
    assert not report.loc[["/main", "/parse"], "cycle"].any()
    assert text.startswith("/main\ndoc of /main")
    assert session.counts["cycles"] == 2 and session.counts["completed"] == 6


def test_single_node_unit_of_work_outside_a_session(db_manager: GraphDB) -> None:
    _make_code_graph(db_manager)
    prompts: list[str] = []

    def llm(prompt: str) -> str:
        prompts.append(prompt)
        return "a class"

    proc = RecursiveDFSProcessor(db_manager, llm, progress=False)
    text = proc._process_single_node("/file1.py::ClassA")  # pyright: ignore[reportPrivateUsage]
    assert text == "/file1.py::ClassA\na class"
    assert "Labels: CLASS" in prompts[0] and "class ClassA: ..." in prompts[0]
    assert session_nodes(db_manager) == 0 and registry_nodes(db_manager) == 0
    with pytest.raises(bl.NodeNotFoundError):
        proc._process_single_node("/missing")  # pyright: ignore[reportPrivateUsage]


def test_a_big_cyclic_call_graph_is_scoped_level_by_level(db_manager: GraphDB) -> None:
    """Scoping through CALLS must not walk every path: on a call graph full of cycles a
    variable-length pattern never finishes (1,000 functions took more than 20 s)."""
    db_manager.run_query(
        "UNWIND range(0, 999) AS i CREATE (:FUNCTION {path: '/f' + toString(i)})", {}
    )
    db_manager.run_query("CREATE (:FILE {path: '/lonely.py'})", {})
    db_manager.run_query(
        "MATCH (a:FUNCTION), (b:FUNCTION) WITH a, b, toInteger(substring(a.path, 2)) AS i, "
        "toInteger(substring(b.path, 2)) AS j "
        "WHERE j = (i + 1) % 1000 OR j = (i * 7 + 3) % 1000 OR j = (i + 500) % 1000 "
        "CREATE (a)-[:CALLS]->(b)",
        {},
    )
    llm = RecordingLLM()
    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=4, progress=False, timeout=120)
    estimate = proc.estimate("/f0", use_hierarchy=False, scope="subtree").iloc[0]
    assert estimate["nodes"] == 1000
    start = time.monotonic()
    text = proc.process_node("/f0", use_hierarchy=False, scope="subtree")
    assert text.startswith("/f0\n") and len(llm.order) == 1000
    with pytest.warns(ScopeWarning):  # the scope warning counts the subtree in memory too
        proc.process_node("/f1", use_hierarchy=False, force=True)
    assert time.monotonic() - start < 60
    assert session_nodes(db_manager) == 0


def test_a_cycles_cut_child_is_named_in_the_prompt_and_the_estimate_agrees(
    db_manager: GraphDB,
) -> None:
    db_manager.run_query(
        "CREATE (x:FUNCTION {path: '/c::x', name: 'x'}), (y:FUNCTION {path: '/c::y', name: 'y'}), "
        "(z:FUNCTION {path: '/c::z', name: 'z'}) "
        "CREATE (x)-[:CALLS]->(y), (y)-[:CALLS]->(z), (z)-[:CALLS]->(x)",
        {},
    )
    prompts: dict[str, str] = {}
    summarizer = bl.ExtractiveSummarizer()

    class Recording:
        model = "recording"

        def get_completion(self, prompt: str) -> str:
            prompts[parse_prompt(prompt).path] = prompt
            return summarizer.get_completion(prompt)

    proc = RecursiveDFSProcessor(db_manager, Recording(), max_workers=2, progress=False)
    first = proc.estimate("/c::x", use_hierarchy=False, scope="subtree").iloc[0]
    text = proc.process_node("/c::x", use_hierarchy=False, scope="subtree")
    session = proc.last_session
    assert session is not None and session.counts["cycles"] == 1
    source = next(p for p in prompts if CYCLE_MARK in text and p == "/c::z")
    children = parse_prompt(prompts[source]).children
    assert [path for path, _ in children] == ["/c::x"], "the cut-off child keeps its path"
    assert (first["llm_calls"], first["cached"]) == (session.llm_calls, session.cached)
    again = proc.estimate("/c::x", use_hierarchy=False, scope="subtree").iloc[0]
    assert proc.process_node("/c::x", use_hierarchy=False, scope="subtree") == text
    second = proc.last_session
    assert second is not None and (second.llm_calls, second.cached) == (0, 3)
    assert (again["llm_calls"], again["cached"]) == (0, 3), "the estimate agrees with the run"


def test_the_budget_is_checked_before_every_call(db_manager: GraphDB) -> None:
    from blarify_lab.usage import Completion

    make = "CREATE (r:FOLDER {path: '/r'}) WITH r UNWIND range(1, 10) AS i "
    db_manager.run_query(make + "CREATE (r)-[:CONTAINS]->(:FILE {path: '/r/f' + toString(i)})", {})

    class Priced:  # only complete(): each call costs $0.002 at 1 $/M tokens
        model = "priced"
        calls = 0

        def complete(self, prompt: str) -> Completion:
            Priced.calls += 1
            return Completion("documented", 1_000, 1_000)

    proc = RecursiveDFSProcessor(
        db_manager,
        Priced(),
        max_workers=1,
        progress=False,
        prices={"prompt": 1.0, "completion": 1.0},
        max_cost_usd=0.0001,
    )
    with pytest.raises(bl.BudgetExceededError):
        proc.process_node("/r", scope="subtree")
    assert Priced.calls == 1, "a budget smaller than one call allows exactly the call in flight"
    assert session_nodes(db_manager) == 0 and registry_nodes(db_manager) == 0
