"""Durable documentation: stored as it is made, reused when its inputs are unchanged, exported."""

from __future__ import annotations

import hashlib
import re
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.prompts import parse_prompt
from blarify_lab.scheduler import ScopeWarning

from .helpers import (
    InThreads,
    graph_fingerprint,
    make_tree,
    no_leftovers,
    start_session_process,
    wait_for,
    wait_started,
)


class CountingLLM:
    """Answers ``doc of <path>`` (with ``by_source``, plus a digest of its source and children's
    descriptions, so that any change in them changes the answer)."""

    def __init__(self, model: str = "counting-1", *, by_source: bool = False, delay: float = 0.0):
        self.model = model
        self.by_source = by_source
        self.delay = delay
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def get_completion(self, prompt: str) -> str:
        parsed = parse_prompt(prompt)
        with self.lock:
            self.calls.append(parsed.path)
        if self.delay:
            time.sleep(self.delay)
        if self.by_source:
            made_of = parsed.source + repr(parsed.children)
            digest = hashlib.sha1(made_of.encode()).hexdigest()[:8]
            return f"doc of {parsed.path} ({digest})"
        return f"doc of {parsed.path}"


def _docs(db: GraphDB) -> dict[str, list[dict[str, Any]]]:
    rows = db.run_query(
        "MATCH (d:DOCUMENTATION)-[:DESCRIBES]->(n) RETURN n.path AS path, properties(d) AS d", {}
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(str(row["path"]), []).append(row["d"])
    return found


def _proc(db: GraphDB, llm: Any, **kwargs: Any) -> RecursiveDFSProcessor:
    return RecursiveDFSProcessor(db, llm, max_workers=4, progress=False, **kwargs)


def test_every_description_is_stored_with_what_it_was_made_from(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 5, 2)
    code_before = graph_fingerprint(db_manager)
    proc = _proc(db_manager, CountingLLM())
    proc.process_node("/root", scope="subtree")
    docs = _docs(db_manager)
    assert len(docs) == total and all(len(v) == 1 for v in docs.values())
    leaf = docs["/root/c1/g1"][0]
    assert leaf["description"] == "doc of /root/c1/g1", "the LLM's text for that node alone"
    assert leaf["model"] == "counting-1" and len(leaf["input_hash"]) == 64
    assert proc.last_session is not None and leaf["session_id"] == proc.last_session.session_id
    assert isinstance(leaf["updated_at"], int)
    assert graph_fingerprint(db_manager) == code_before, "code nodes are never changed"
    assert no_leftovers(db_manager)


def test_a_rerun_with_no_change_makes_no_call_and_returns_the_same_text(
    db_manager: GraphDB,
) -> None:
    total = make_tree(db_manager, 6, 3)
    llm = CountingLLM()
    proc = _proc(db_manager, llm)
    first = proc.process_node("/root", scope="subtree")
    assert len(llm.calls) == total
    stored = graph_fingerprint(db_manager, documentation=True)
    second = proc.process_node("/root", scope="subtree")
    assert second == first and len(llm.calls) == total, "no call the second time"
    assert graph_fingerprint(db_manager, documentation=True) == stored, "nothing rewritten"
    session = proc.last_session
    assert session is not None
    report = session.report()
    assert bool(report["cached"].all())
    assert bool(report["description"].str.startswith("doc of /").all())
    summary = session.summary().iloc[0]
    assert (summary["llm_calls"], summary["cached"]) == (0, total)


def test_force_asks_again_and_another_model_asks_again(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 3, 2)
    llm = CountingLLM("model-a")
    _proc(db_manager, llm).process_node("/root", scope="subtree")
    _proc(db_manager, llm).process_node("/root", scope="subtree", force=True)
    assert len(llm.calls) == 2 * total
    other = CountingLLM("model-b")
    _proc(db_manager, other).process_node("/root", scope="subtree")
    assert len(other.calls) == total
    assert {d[0]["model"] for d in _docs(db_manager).values()} == {"model-b"}
    again = CountingLLM("model-b")
    _proc(db_manager, again).process_node("/root", scope="subtree")
    assert again.calls == []


def test_a_change_travels_up_only_as_far_as_descriptions_change(db_manager: GraphDB) -> None:
    make_tree(db_manager, 3, 2)
    edit = "MATCH (n) WHERE n.path = '/root/c1/g1' SET n.text = $text"
    # early cutoff: the leaf's new description equals the stored one, so its parent is reused
    llm = CountingLLM()
    _proc(db_manager, llm).process_node("/root", scope="subtree")
    llm.calls.clear()
    db_manager.run_query(edit, {"text": "def g(): return 2"})
    _proc(db_manager, llm).process_node("/root", scope="subtree")
    assert llm.calls == ["/root/c1/g1"]
    # a description that does change re-asks exactly the ancestors whose prompts changed
    by_source = CountingLLM("by-source", by_source=True)
    _proc(db_manager, by_source).process_node("/root", scope="subtree")
    by_source.calls.clear()
    db_manager.run_query(edit, {"text": "def g(): return 3"})
    proc = _proc(db_manager, by_source)
    proc.process_node("/root", scope="subtree")
    assert sorted(by_source.calls) == ["/root", "/root/c1", "/root/c1/g1"]
    assert proc.last_session is not None and proc.last_session.cached == 10 - 3


def test_resume_after_sigkill_makes_exactly_the_missing_calls(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    total = make_tree(db_manager, 20, 3)
    child = start_session_process(
        db_env, "/root", delay=0.05, workers=2, extra="proc.model = 'resume-test'"
    )
    try:
        wait_started(child)
        assert wait_for(lambda: len(_docs(db_manager)) >= 20, 30)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    stored = len(_docs(db_manager))
    assert 20 <= stored < total

    class SameModel(CountingLLM):
        def get_completion(self, prompt: str) -> str:
            super().get_completion(prompt)
            return "doc Path: " + parse_prompt(prompt).path  # what the child's LLM answers

    llm = SameModel("resume-test")
    _proc(db_manager, llm).process_node("/root")
    assert len(llm.calls) == total - stored, "one call per node with no stored documentation"
    assert len(set(llm.calls)) == len(llm.calls)
    assert len(_docs(db_manager)) == total
    bl.cleanup_leftovers(db_manager, force=True)
    assert no_leftovers(db_manager)


def test_concurrent_sessions_keep_one_documentation_node_per_code_node(
    db_manager: GraphDB,
) -> None:
    total = make_tree(db_manager, 10, 4)
    procs = [_proc(db_manager, CountingLLM(f"m{i}", delay=0.002)) for i in range(4)]
    runs = InThreads(procs, "/root")
    texts = runs.join()
    assert len(texts) == 4
    docs = _docs(db_manager)
    assert len(docs) == total
    assert all(len(found) == 1 for found in docs.values()), "exactly one per code node"
    count = db_manager.run_query("MATCH (d:DOCUMENTATION) RETURN count(d) AS c", {})[0]["c"]
    assert count == total
    assert no_leftovers(db_manager)


def test_save_documentation_false_stores_and_reuses_nothing(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 3, 1)
    llm = CountingLLM()
    for _ in range(2):
        _proc(db_manager, llm, save_documentation=False).process_node("/root")
    assert len(llm.calls) == 2 * total and _docs(db_manager) == {}


def test_what_finished_before_a_timeout_is_stored_and_late_calls_write_nothing(
    db_manager: GraphDB,
) -> None:
    make_tree(db_manager, 20, 3)
    proc = RecursiveDFSProcessor(
        db_manager, CountingLLM(delay=0.05), max_workers=2, progress=False, timeout=0.6
    )
    with pytest.raises(TimeoutError):
        proc.process_node("/root")
    session = proc.last_session
    assert session is not None
    completed = session.counts["completed"]
    assert completed > 0 and len(_docs(db_manager)) == completed
    time.sleep(0.2)  # the calls abandoned by the timeout return now, into nothing
    assert len(_docs(db_manager)) == completed
    assert no_leftovers(db_manager)


def test_cleanup_of_leftovers_never_removes_documentation(db_manager: GraphDB) -> None:
    total = make_tree(db_manager, 3, 1)
    _proc(db_manager, CountingLLM()).process_node("/root")
    sid = "f" * 32
    db_manager.run_query(
        "MATCH (n) WHERE n.path STARTS WITH '/root' SET n.processing_status_"
        + sid
        + " = 'pending'",
        {},
    )
    assert len(bl.cleanup_leftovers(db_manager)) == 1
    assert len(_docs(db_manager)) == total


def test_graph_scope_beyond_the_subtree_warns_with_both_counts(db_manager: GraphDB) -> None:
    make_tree(db_manager, 2, 1)
    db_manager.run_query("UNWIND range(1, 7) AS i CREATE (:FILE {path: '/x' + toString(i)})", {})
    proc = _proc(db_manager, CountingLLM())
    with pytest.warns(ScopeWarning, match=r"all 12 code nodes.*7 lie outside the 5"):
        proc.process_node("/root")
    assert proc.last_session is not None
    summary = proc.last_session.summary().iloc[0]
    assert (summary["scope"], summary["outside_subtree"]) == ("graph", 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proc.process_node("/root", scope="subtree")


def test_documentation_frame_lists_what_is_stored_under_a_root(db_manager: GraphDB) -> None:
    make_tree(db_manager, 2, 2)
    db_manager.run_query("CREATE (:FILE {path: '/rootless.py'})", {})
    _proc(db_manager, CountingLLM()).process_node("/root", scope="subtree")
    frame = bl.documentation(db_manager, "/root")
    assert list(frame.columns) == [
        "path",
        "key",
        "kind",
        "name",
        "labels",
        "tenant",
        "description",
        "model",
        "session_id",
        "updated_at",
        "truncated",
        "ungrounded",
        "grounded_ratio",
    ]
    assert len(frame) == 7 and "/rootless.py" not in set(frame["path"])
    assert frame.loc[frame["path"] == "/root/c2/g1", "description"].item() == "doc of /root/c2/g1"
    assert str(frame["updated_at"].dtype).startswith("datetime64")
    assert bl.documentation(db_manager, "/nothing").empty
    with pytest.raises(ValueError):
        bl.documentation(db_manager, "")


def test_export_writes_a_markdown_tree_that_mirrors_the_code(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""The package."""\n')
    (package / "sub" / "mod.py").write_text(
        "class A:\n    def m(self):\n        return helper()\n\n\ndef helper():\n    return 1\n"
    )
    bl.load_python_package(db_manager, package)
    _proc(db_manager, bl.ExtractiveSummarizer()).process_node("/pkg", scope="subtree")
    from blarify_lab.documentation import export_markdown

    out = tmp_path / "docs"
    pages = export_markdown(db_manager, "/pkg", out)
    names = sorted(p.relative_to(out).as_posix() for p in pages)
    assert names == ["__init__.py.md", "index.md", "sub/index.md", "sub/mod.py.md"]
    index = (out / "index.md").read_text()
    assert "[sub/](sub/index.md)" in index
    assert "[\\_\\_init\\_\\_.py](__init__.py.md)" in index, "names are escaped Markdown"
    mod = (out / "sub" / "mod.py.md").read_text()
    assert "## A (class)" in mod and "### A.m (function)" in mod and "## helper" in mod
    assert mod.index("## A (class)") < mod.index("## helper"), "source order"
    assert "Up: [sub](index.md)" in mod
    with pytest.raises(LookupError, match="no stored documentation"):
        export_markdown(db_manager, "/elsewhere", tmp_path / "none")


def test_wrapped_models_keep_their_identity(db_manager: GraphDB) -> None:
    import functools

    total = make_tree(db_manager, 2, 1)
    asked: list[str] = []

    def call_model(prompt: str, model: str) -> str:
        asked.append(model)
        return f"[{model}] {parse_prompt(prompt).path}"

    for model in ("cheap-model", "expensive-model"):
        _proc(db_manager, functools.partial(call_model, model=model)).process_node("/root")
    assert asked.count("expensive-model") == total, "another model is asked again"
    first = lambda prompt: "A"  # noqa: E731
    second = lambda prompt: "B"  # noqa: E731
    for llm in (first, second):
        _proc(db_manager, llm).process_node("/root", scope="subtree")
    frame = bl.documentation(db_manager, "/root")
    assert set(frame["description"]) == {"B"}, "two lambdas are two models"


def test_export_gives_every_file_its_own_page(db_manager: GraphDB, tmp_path: Path) -> None:
    from urllib.parse import unquote

    from blarify_lab.documentation import export_markdown

    package = tmp_path / "odd"
    for name in ("a b.py", "a#b.py", "a_b.py", ".x.py", "x.py"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(f"def f():\n    return {name!r}\n")
    for folder in ("c d", "c_d"):
        (package / folder).mkdir()
        (package / folder / "m.py").write_text("def g():\n    return 1\n")
    bl.load_python_package(db_manager, package)
    _proc(db_manager, bl.ExtractiveSummarizer()).process_node("/odd", scope="subtree")
    out = tmp_path / "md"
    pages = export_markdown(db_manager, "/odd", out)
    assert len(pages) == len(set(pages)) == 10  # 5 files, 2 folders x (index + m.py), root
    for page in pages:
        for target in re.findall(r"\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / unquote(target)).is_file(), (page, target)
    index = (out / "index.md").read_text()
    assert "a%2520b.py.md" in index and "a%2523b.py.md" in index and "(a_b.py.md)" in index
