"""Grounding on every answer: invented names are flagged, stored, reported, exported and, with
``repair_ungrounded``, repaired; prompts per kind reach a chat model as system + user."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.documentation import export_markdown
from blarify_lab.openai_chat import OpenAIChat
from blarify_lab.prompts import parse_prompt
from blarify_lab.reports import session_text
from blarify_lab.usage import Completion

from .llm_server import LLMTestServer

INVENTED = "frobnicate_all"


class HallucinatingLLM:
    """Names the node and an invented helper on the first ask; on a repair prompt, which lists
    the names that do not exist, it names the node only."""

    model = "hallucinating-1"

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.lock = threading.Lock()

    def complete(self, prompt: str) -> Completion:
        with self.lock:
            self.prompts.append(prompt)
        name = parse_prompt(prompt).name.removesuffix(".py").split(".")[-1] or "thing"
        if "## Names that do not exist" in prompt:
            text = f"`{name}` does what its source says."
        else:
            text = f"`{name}` calls {INVENTED}() and `{name}`."
        return Completion(text, 100, 10)


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(
        "def add_numbers(first, second):\n    return first + second\n\n\n"
        "class Adder:\n    def total(self, values):\n        return sum(values)\n"
    )
    return package


def test_invented_names_are_flagged_stored_reported_and_exported(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    bl.load_python_package(db_manager, _package(tmp_path))
    proc = RecursiveDFSProcessor(db_manager, HallucinatingLLM(), max_workers=2, progress=False)
    proc.process_node("/pkg", scope="subtree")
    session = proc.last_session
    assert session is not None
    report = session.report().set_index("path")
    assert {"ungrounded", "grounded_ratio"} <= set(report.columns)
    add = report.loc["/pkg/mod.py::add_numbers"]
    assert add["ungrounded"] == [INVENTED] and add["grounded_ratio"] == pytest.approx(0.5)
    assert bool((report["grounded_ratio"] == 0.5).all())
    assert session.summary()["grounded_ratio"].item() == pytest.approx(0.5)
    assert "grounded 50%" in session_text(session)

    docs = bl.documentation(db_manager, "/pkg").set_index("path")
    assert docs.loc["/pkg/mod.py::Adder.total", "ungrounded"] == [INVENTED]
    assert docs.loc["/pkg/mod.py::Adder.total", "grounded_ratio"] == pytest.approx(0.5)
    page = export_markdown(db_manager, "/pkg", tmp_path / "out")
    text = "".join(p.read_text() for p in page)
    assert f"**Unverified names** (grounded 50%): `{INVENTED}`" in text


def test_repair_asks_once_more_and_keeps_the_grounded_answer(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    bl.load_python_package(db_manager, _package(tmp_path))
    llm = HallucinatingLLM()
    proc = RecursiveDFSProcessor(
        db_manager,
        llm,
        max_workers=2,
        progress=False,
        repair_ungrounded=1,
        prices={"prompt": 1.0, "completion": 2.0},
    )
    proc.process_node("/pkg", scope="subtree")
    session = proc.last_session
    assert session is not None
    nodes = session.total
    assert len(llm.prompts) == 2 * nodes
    repairs = [p for p in llm.prompts if "## Names that do not exist" in p]
    assert len(repairs) == nodes and all(f"- {INVENTED}" in p for p in repairs)
    report = session.report().set_index("path")
    assert bool((report["attempts"] == 2).all())
    assert bool((report["prompt_tokens"] == 200).all())
    assert bool((report["completion_tokens"] == 20).all())
    assert session.llm_calls == 2 * nodes
    assert session.cost_usd == pytest.approx(nodes * (200 * 1.0 + 20 * 2.0) / 1e6)
    assert bool((report["grounded_ratio"] == 1.0).all())
    assert all(list(u) == [] for u in report["ungrounded"])
    assert session.summary()["grounded_ratio"].item() == 1.0
    docs = bl.documentation(db_manager, "/pkg").set_index("path")
    assert docs.loc["/pkg/mod.py::add_numbers", "description"] == (
        "`add_numbers` does what its source says."
    )
    # the repaired answer is reused like any other: the first prompt is what it was made from
    again = RecursiveDFSProcessor(db_manager, llm, progress=False, repair_ungrounded=1)
    again.process_node("/pkg", scope="subtree")
    assert len(llm.prompts) == 2 * nodes
    assert again.last_session is not None and again.last_session.cached == nodes


def test_repair_keeps_the_first_answer_when_the_second_is_worse(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (:FUNCTION {path: '/f', name: 'f', text: 'def f(alpha_value): return alpha_value'})",
        {},
    )
    answers = iter(["`f` uses alpha_value and ghost_one.", "`ghost_two` and `ghost_three`."])
    proc = RecursiveDFSProcessor(
        db_manager, lambda prompt: next(answers), progress=False, repair_ungrounded=1
    )
    assert "ghost_one" in proc.process_node("/f")
    assert proc.last_session is not None
    row = proc.last_session.report().iloc[0]
    assert row["ungrounded"] == ["ghost_one"] and row["grounded_ratio"] == 0.5


def test_a_description_that_names_nothing_has_no_ratio(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (:FUNCTION {path: '/g', name: 'g', text: 'def g(): pass'})", {})
    proc = RecursiveDFSProcessor(db_manager, lambda p: "Does nothing at all.", progress=False)
    proc.process_node("/g")
    assert proc.last_session is not None
    assert math.isnan(proc.last_session.summary()["grounded_ratio"].item())
    row = bl.documentation(db_manager, "/g").iloc[0]
    assert row["ungrounded"] == [] and math.isnan(row["grounded_ratio"])


def test_changing_a_template_asks_again_and_chat_models_get_a_system_role(
    db_manager: GraphDB,
) -> None:
    db_manager.run_query("CREATE (:CLASS {path: '/C', name: 'C', text: 'class C: pass'})", {})
    with (
        LLMTestServer() as server,
        OpenAIChat("m", base_url=server.base_url, api_key=server.api_key) as llm,
    ):
        RecursiveDFSProcessor(db_manager, llm, progress=False).process_node("/C")
        RecursiveDFSProcessor(db_manager, llm, progress=False).process_node("/C")
        assert len(server.chat_requests()) == 1, "the same prompt is reused"
        messages = server.chat_requests()[0].body["messages"]
        assert [m["role"] for m in messages] == ["system", "user"]
        assert "main methods" in messages[1]["content"]
        custom = {"CLASS": "Say what {name} is for.\n{body}", "SYSTEM": "Be brief."}
        RecursiveDFSProcessor(db_manager, llm, progress=False, prompts=custom).process_node("/C")
        assert len(server.chat_requests()) == 2, "a changed template asks again"
        messages = server.chat_requests()[1].body["messages"]
        assert messages[0] == {"role": "system", "content": "Be brief."}
        assert messages[1]["content"].startswith("Say what C is for.\n## Node")
    with pytest.raises(ValueError, match="unknown field"):
        RecursiveDFSProcessor(db_manager, llm, prompts={"CLASS": "{body} {oops}"})
    with pytest.raises(ValueError, match="repair_ungrounded"):
        RecursiveDFSProcessor(db_manager, llm, repair_ungrounded=-1)


def test_the_estimate_agrees_with_the_prompts(db_manager: GraphDB, tmp_path: Path) -> None:
    bl.load_python_package(db_manager, _package(tmp_path))
    custom = {"FUNCTION": "Just {name}.\n{body}"}
    proc = RecursiveDFSProcessor(db_manager, HallucinatingLLM(), progress=False, prompts=custom)
    proc.process_node("/pkg", scope="subtree")
    assert proc.estimate("/pkg", scope="subtree")["cached"].item() == 5
    other = RecursiveDFSProcessor(db_manager, HallucinatingLLM(), progress=False)
    assert other.estimate("/pkg", scope="subtree")["cached"].item() == 0
