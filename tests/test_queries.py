"""The processing-state queries, run on every backend."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from benchmarks import baseline_queries as baseline
from blarify_lab import queries as q
from blarify_lab.db import GraphDB


def _sid() -> str:
    return uuid.uuid4().hex


def _tree(db: GraphDB) -> None:
    """parent -> child1 -> grandchild, parent -> child2."""
    db.run_query(
        "CREATE (p:FOLDER {path: '/parent', keep: 'me'}) "
        "CREATE (c1:FILE {path: '/parent/child1'}) "
        "CREATE (c2:FILE {path: '/parent/child2'}) "
        "CREATE (g:FUNCTION {path: '/parent/child1/grandchild'}) "
        "CREATE (p)-[:CONTAINS]->(c1) CREATE (p)-[:CONTAINS]->(c2) CREATE (c1)-[:CONTAINS]->(g)",
        {},
    )


def _statuses(db: GraphDB, sid: str) -> dict[str, Any]:
    prop = q.status_property(sid)
    rows = db.run_query(f"MATCH (n) RETURN n.path AS path, n.{prop} AS status", {})
    return {r["path"]: r["status"] for r in rows}


def _init(db: GraphDB, sid: str) -> int:
    rows = db.run_query(q.initialize_processing_session_query(sid), {"session_id": sid})
    return int(rows[0]["count"])


def test_initialise_marks_every_node_pending(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    assert _init(db_manager, sid) == 4
    assert set(_statuses(db_manager, sid).values()) == {"pending"}


def test_initialise_subtree_scope_marks_only_reachable_nodes(db_manager: GraphDB) -> None:
    _tree(db_manager)
    db_manager.run_query("CREATE (:FILE {path: '/elsewhere'})", {})
    sid = _sid()
    root = db_manager.run_query(q.find_node_query(), {"node_path": "/parent/child1"})
    params: dict[str, Any] = {"session_id": sid}
    rows = db_manager.run_query(
        q.mark_nodes_query(sid), {**params, "node_ids": [root[0]["node_id"]]}
    )
    frontier, marked = [r["node_id"] for r in rows], len(rows)
    while frontier:
        rows = db_manager.run_query(q.expand_scope_query(sid), {**params, "frontier": frontier})
        frontier = [r["node_id"] for r in rows]
        marked += len(frontier)
    assert marked == 2
    statuses = _statuses(db_manager, sid)
    assert statuses["/parent/child1"] == statuses["/parent/child1/grandchild"] == "pending"
    assert statuses["/parent"] is None and statuses["/elsewhere"] is None


def test_registry_and_documentation_nodes_are_never_in_scope(db_manager: GraphDB) -> None:
    _tree(db_manager)
    db_manager.run_query(
        "CREATE (:DOCUMENTATION {path: '/doc'}) CREATE (:BLARIFY_SESSION {path: '/s'})", {}
    )
    sid = _sid()
    assert _init(db_manager, sid) == 4
    statuses = _statuses(db_manager, sid)
    assert statuses["/doc"] is None and statuses["/s"] is None


def test_mark_moves_node_through_statuses(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    _init(db_manager, sid)
    for status in ("in_progress", "completed"):
        rows = db_manager.run_query(
            baseline.mark_processing_status_query(sid),
            {"session_id": sid, "node_path": "/parent/child2", "status": status},
        )
        assert rows[0]["updated"] == 1
        assert _statuses(db_manager, sid)["/parent/child2"] == status
    assert _statuses(db_manager, sid)["/parent/child1"] == "pending"


def test_batched_mark(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    _init(db_manager, sid)
    rows = db_manager.run_query(
        baseline.mark_processing_status_batch_query(sid),
        {"session_id": sid, "node_paths": ["/parent/child1", "/parent/child2"], "status": "failed"},
    )
    assert rows[0]["updated"] == 2
    st = _statuses(db_manager, sid)
    assert st["/parent/child1"] == st["/parent/child2"] == "failed"
    assert st["/parent"] == "pending"


def test_mark_does_not_touch_nodes_outside_the_session(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    rows = db_manager.run_query(
        baseline.mark_processing_status_query(sid),
        {"session_id": sid, "node_path": "/parent", "status": "completed"},
    )
    assert rows[0]["updated"] == 0
    assert _statuses(db_manager, sid)["/parent"] is None


def _processable(db: GraphDB, sid: str, batch_size: int = 10) -> set[str]:
    rows = db.run_query(
        baseline.get_processable_nodes_query(sid), {"session_id": sid, "batch_size": batch_size}
    )
    return {r["path"] for r in rows}


def _complete(db: GraphDB, sid: str, paths: set[str]) -> None:
    db.run_query(
        baseline.mark_processing_status_batch_query(sid),
        {"session_id": sid, "node_paths": sorted(paths), "status": "completed"},
    )


def test_processable_nodes_come_leaves_first(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    _init(db_manager, sid)
    first = _processable(db_manager, sid)
    assert first == {"/parent/child1/grandchild", "/parent/child2"}
    assert _processable(db_manager, sid) == set(), "claimed nodes are not handed out twice"
    st = _statuses(db_manager, sid)
    assert st["/parent/child2"] == "in_progress"
    _complete(db_manager, sid, first)
    assert _processable(db_manager, sid) == {"/parent/child1"}
    _complete(db_manager, sid, {"/parent/child1"})
    assert _processable(db_manager, sid) == {"/parent"}
    _complete(db_manager, sid, {"/parent"})
    assert _processable(db_manager, sid) == set()


def test_failed_children_count_as_finished(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    _init(db_manager, sid)
    db_manager.run_query(
        baseline.mark_processing_status_batch_query(sid),
        {
            "session_id": sid,
            "node_paths": ["/parent/child1/grandchild", "/parent/child2"],
            "status": "failed",
        },
    )
    assert _processable(db_manager, sid) == {"/parent/child1"}


def test_processable_respects_batch_size(db_manager: GraphDB) -> None:
    db_manager.run_query("UNWIND range(1, 25) AS i CREATE (:FILE {path: '/f' + toString(i)})", {})
    sid = _sid()
    _init(db_manager, sid)
    sizes = [len(_processable(db_manager, sid, batch_size=10)) for _ in range(4)]
    assert sizes == [10, 10, 5, 0]


def test_cleanup_removes_all_session_data_and_no_node(db_manager: GraphDB) -> None:
    _tree(db_manager)
    sid = _sid()
    _init(db_manager, sid)
    before = db_manager.run_query("MATCH (n) RETURN count(n) AS c", {})[0]["c"]
    rows = db_manager.run_query(q.cleanup_session_query(sid), {"session_id": sid})
    assert rows[0]["removed"] == 4
    assert set(_statuses(db_manager, sid).values()) == {None}
    assert db_manager.run_query("MATCH (n) RETURN count(n) AS c", {})[0]["c"] == before
    keep = db_manager.run_query("MATCH (n {path: '/parent'}) RETURN n.keep AS k", {})
    assert keep == [{"k": "me"}]
    edges = db_manager.run_query("MATCH ()-[r:CONTAINS]->() RETURN count(r) AS c", {})
    assert edges[0]["c"] == 3


def test_batched_cleanup_goes_in_chunks(db_manager: GraphDB) -> None:
    db_manager.run_query("UNWIND range(1, 25) AS i CREATE (:FILE {path: '/f' + toString(i)})", {})
    sid = _sid()
    _init(db_manager, sid)
    removed = []
    query = q.cleanup_session_query(sid, batched=True)
    while True:
        n = db_manager.run_query(query, {"session_id": sid, "batch_size": 10})[0]["removed"]
        removed.append(n)
        if n == 0:
            break
    assert removed == [10, 10, 5, 0]


def test_two_sessions_see_only_their_own_statuses(db_manager: GraphDB) -> None:
    _tree(db_manager)
    a, b = _sid(), _sid()
    _init(db_manager, a)
    _init(db_manager, b)
    assert _processable(db_manager, a) == {"/parent/child1/grandchild", "/parent/child2"}
    st_b = _statuses(db_manager, b)
    assert set(st_b.values()) == {"pending"}, "session a's claims must not show in b"
    assert _processable(db_manager, b) == {"/parent/child1/grandchild", "/parent/child2"}
    db_manager.run_query(q.cleanup_session_query(a), {"session_id": a})
    assert set(_statuses(db_manager, a).values()) == {None}
    assert set(_statuses(db_manager, b).values()) == {"pending", "in_progress"}


BAD_IDS = [
    "",
    "abc",
    "0123456789ABCDEF0123456789ABCDEF",
    "0123456789abcdef0123456789abcde}",
    "0123456789abcdef0123456789abcd'x",
    "0123456789abcdef0123456789abcdef ",
    "0123456789abcdef0123456789abcdef0",
    "x` IS NULL OR true //",
    "0123456789abcdef0123456789abcd\u04350",  # a Cyrillic letter that looks like e
    None,
    123,
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=[repr(b) for b in BAD_IDS])
def test_every_session_builder_rejects_bad_ids(bad: Any) -> None:
    builders = [
        q.initialize_processing_session_query,
        baseline.mark_processing_status_query,
        baseline.mark_processing_status_batch_query,
        q.advance_session_query,
        baseline.get_processable_nodes_query,
        q.cleanup_session_query,
        baseline.session_status_counts_query,
        q.scope_edges_query,
    ]
    for build in builders:
        with pytest.raises(ValueError, match="session id"):
            build(bad)


@pytest.mark.parametrize(
    "bad", ["CONTAINS]->(x) DELETE x //", "", "1ABC", "CALLS ", "CÄLLS", "a`b"]
)
def test_relationship_types_are_validated(bad: str) -> None:
    sid = _sid()
    with pytest.raises(ValueError, match="relationship type"):
        baseline.get_processable_nodes_query(sid, bad)
    with pytest.raises(ValueError, match="relationship type"):
        q.scope_edges_query(sid, bad)
    with pytest.raises(ValueError, match="label"):
        q.create_nodes_query(bad)
