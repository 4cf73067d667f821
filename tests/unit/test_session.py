"""A session's counts and records move together; no database."""

from __future__ import annotations

import threading

from blarify_lab.errors import SessionCancelled
from blarify_lab.session import NodeRecord, ProcessingSession, status_for


def _session(n: int) -> ProcessingSession:
    s = ProcessingSession(session_id="0" * 32, root_path="/r", max_workers=2)
    s.begin({i: NodeRecord(node_id=i) for i in range(n)})
    return s


def test_a_node_moves_pending_queued_running_finished() -> None:
    s = _session(3)
    s.claimed(0, "/a", ("FILE",))
    s.claimed(1, "/b", ("FILE",))
    assert s.counts == {
        "pending": 1, "queued": 2, "running": 0, "completed": 0, "failed": 0, "cycles": 0
    }  # fmt: skip
    s.started(0, "w1")
    assert (s.counts["queued"], s.counts["running"]) == (1, 1)
    s.finished(0, ok=True)
    s.started(1, "w2")
    s.finished(1, ok=False, error="RuntimeError: no")
    c = s.counts
    assert (c["completed"], c["failed"], c["running"], c["queued"]) == (1, 1, 0, 0)
    assert s.nodes[1].status == "failed" and list(s.recent_errors) == [("/b", "RuntimeError: no")]
    assert s.nodes[0].started_at is not None and s.nodes[0].finished_at is not None
    assert s.nodes[0].finished_at >= s.nodes[0].started_at


def test_counts_stay_consistent_under_threads() -> None:
    s = _session(4000)

    def work(start: int) -> None:
        for i in range(start, 4000, 4):
            s.claimed(i, f"/{i}", ())
            s.started(i, "w")
            s.finished(i, ok=i % 3 != 0)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c = s.counts
    assert c["completed"] + c["failed"] == 4000 and c["pending"] == c["running"] == 0


def test_end_is_kept_once_and_statuses_follow_the_error() -> None:
    s = _session(1)
    s.end("cancelled", "SessionCancelled: stop")
    s.end("completed")
    assert s.status == "cancelled" and s.done and s.finished_at is not None
    assert status_for(None) == "completed"
    assert status_for(TimeoutError()) == "timed_out"
    assert status_for(SessionCancelled()) == "cancelled"
    assert status_for(KeyboardInterrupt()) == "cancelled"
    assert status_for(ValueError()) == "failed"


def test_pure_modules_import_no_database_and_no_pandas() -> None:
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "blarify_lab"
    allowed_local = {"errors", "queries", "prompts", "graph"}
    for name in ("session", "graph", "prompts"):
        tree = ast.parse((package / f"{name}.py").read_text())
        type_only = {
            id(inner)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for inner in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):
                local = (node.module or "").split(".")[0]
                in_type_block = local in {"figures", "reports"}  # lazy, for display only
                assert local in allowed_local or in_type_block, (name, local)
                continue
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top not in {"pandas", "falkordb", "neo4j", "redis", "numpy"}, (name, top)
