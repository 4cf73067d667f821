"""The database layer on every backend: value round trips, parameters, errors, embedded server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.embedded import PASSWORD_FILE, STATE_FILE, EmbeddedFalkorDB
from blarify_lab.redis_wire import answers_ping

from .embedded_helpers import redis_servers_of
from .helpers import wait_for

VALUES: list[object] = [
    "text",
    "quotes ' \" ` and braces {} // and a\nnewline, unicode é ✓",
    "",
    0,
    -42,
    2**53,
    3.25,
    -0.5,
    True,
    False,
    None,
    [1, 2, 3],
    ["a", 1, 2.5, True, None],
    [],
    {"k": 1, "nested": {"list": [1, "x"], "none": None}},
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_parameter_round_trip(db_manager: GraphDB, value: object) -> None:
    rows = db_manager.run_query("RETURN $v AS v", {"v": value})
    assert rows == [{"v": value}]


def test_node_comes_back_as_plain_dict_of_properties(db_manager: GraphDB) -> None:
    props = {"path": "/a.py", "n": 3, "f": 1.5, "ok": True, "tags": ["x", "y"]}
    rows = db_manager.run_query(
        "CREATE (n:FILE) SET n += $props RETURN n, n.path AS p", {"props": props}
    )
    assert rows == [{"n": props, "p": "/a.py"}]
    assert type(rows[0]["n"]) is dict


def test_many_records_and_columns(db_manager: GraphDB) -> None:
    rows = db_manager.run_query("UNWIND range(1, 500) AS i RETURN i, i * 2 AS j", {})
    assert len(rows) == 500
    assert rows[0] == {"i": 1, "j": 2} and rows[-1] == {"i": 500, "j": 1000}


def test_parameters_are_not_interpreted_as_cypher(db_manager: GraphDB) -> None:
    evil = "x'}) MATCH (m) DETACH DELETE m //"
    db_manager.run_query("CREATE (:FILE {path: 'keep'})", {})
    db_manager.run_query("CREATE (n:FILE {path: $p})", {"p": evil})
    rows = db_manager.run_query("MATCH (n:FILE) RETURN n.path AS p ORDER BY p", {})
    assert [r["p"] for r in rows] == sorted(["keep", evil])


def test_bad_query_carries_backend_message(db_manager: GraphDB) -> None:
    with pytest.raises(bl.QueryError) as info:
        db_manager.run_query("MATCH (n RETURN n", {})
    assert info.value.backend_message
    assert isinstance(info.value, bl.GraphDBError)


def test_context_manager_closes(db_manager: GraphDB) -> None:
    with db_manager as db:
        assert db.run_query("RETURN 1 AS x", {}) == [{"x": 1}]
    with pytest.raises(bl.DatabaseUnavailableError):
        db_manager.run_query("RETURN 1 AS x", {})


def test_unreachable_falkordb_fails_fast_naming_uri_not_password() -> None:
    start = time.monotonic()
    with pytest.raises(bl.DatabaseUnavailableError) as info:
        bl.connect("falkordb://:hunter2secret@127.0.0.1:1/g")
    assert time.monotonic() - start < 15
    assert "127.0.0.1:1" in str(info.value)
    assert "hunter2secret" not in str(info.value)


def test_unreachable_neo4j_fails_fast_naming_uri_not_password() -> None:
    start = time.monotonic()
    with pytest.raises(bl.GraphDBError) as info:
        bl.connect("bolt://neo4j:hunter2secret@127.0.0.1:1")
    assert time.monotonic() - start < 30
    assert "127.0.0.1:1" in str(info.value)
    assert "hunter2secret" not in str(info.value)
    assert isinstance(info.value, ConnectionError)


@pytest.mark.parametrize(
    "uri", ["mysql://x", "http://localhost:7474", "falkordb://host:notaport/g"]
)
def test_unsupported_or_malformed_uri_is_a_value_error(uri: str) -> None:
    with pytest.raises(ValueError) as info:
        bl.connect(uri)
    assert "secret" not in str(info.value)


def test_connect_uses_uri_from_environment(
    falkordb_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"{falkordb_server.uri}/env_graph"  # type: ignore[attr-defined]
    monkeypatch.setenv("BLARIFY_LAB_URI", uri)
    with bl.connect() as db:
        assert isinstance(db, FalkorDBManager)
        assert db.graph_name == "env_graph"
        assert db.run_query("RETURN 2 AS y", {}) == [{"y": 2}]


def _redis_serving(data_dir: Path) -> list[int]:
    """The redis-server processes working in ``data_dir`` (their current directory)."""
    return redis_servers_of(data_dir)


def test_embedded_server_reused_persistent_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BLARIFY_LAB_URI", raising=False)
    db1 = bl.connect(data_dir=tmp_path)
    db2 = bl.connect(data_dir=tmp_path)
    assert isinstance(db1, FalkorDBManager) and isinstance(db2, FalkorDBManager)
    assert db1.port == db2.port, "a second connect() must reuse the server"
    assert len(_redis_serving(tmp_path)) == 1
    db1.run_query("CREATE (:FILE {path: '/persist.py'})", {})
    db1.close()
    assert db2.run_query("MATCH (n:FILE) RETURN n.path AS p", {}) == [{"p": "/persist.py"}]
    db2.close()
    assert _redis_serving(tmp_path) == [], "close() of the last user stops the server"
    assert not (tmp_path / STATE_FILE).exists()
    with bl.connect(data_dir=tmp_path) as db3:  # restart on the same directory
        assert db3.run_query("MATCH (n:FILE) RETURN n.path AS p", {}) == [{"p": "/persist.py"}]
    assert _redis_serving(tmp_path) == []


def test_embedded_server_reused_across_processes(tmp_path: Path) -> None:
    server = EmbeddedFalkorDB.acquire(data_dir=tmp_path)
    try:
        code = (
            "import blarify_lab as bl, sys\n"
            f"db = bl.connect(data_dir={str(tmp_path)!r})\n"
            "print(db.port)\n"
            "db.run_query(\"CREATE (:FILE {path: '/child.py'})\", {})\n"
            "db.close()\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "BLARIFY_LAB_URI"}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.strip()) == server.port
        assert server.alive(), "the other process must not stop a server it did not start"
        with FalkorDBManager(port=server.port, password=server.password) as db:
            assert db.run_query("MATCH (n:FILE) RETURN count(n) AS c", {}) == [{"c": 1}]
    finally:
        server.release()


def test_killed_client_loses_nothing_and_its_server_stops(tmp_path: Path) -> None:
    """A process killed right after writing: the data survives, and the server it started
    stops within a few seconds since no user is left."""
    code = (
        "import blarify_lab as bl, os, signal\n"
        f"db = bl.connect(data_dir={str(tmp_path)!r})\n"
        "db.run_query(\"UNWIND range(1, 100) AS i CREATE (:FILE {path: 'f' + toString(i)})\", {})\n"
        "print(db.port, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BLARIFY_LAB_URI"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == -9
    port = int(out.stdout.strip())
    password = (tmp_path / PASSWORD_FILE).read_text()
    assert wait_for(lambda: not _redis_serving(tmp_path), 5), "no user left: the server stops"
    assert not answers_ping("127.0.0.1", port, password=password)
    with bl.connect(data_dir=tmp_path) as db:
        assert db.run_query("MATCH (n:FILE) RETURN count(n) AS c", {}) == [{"c": 100}]


def test_temporary_embedded_database_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLARIFY_LAB_URI", raising=False)
    db = bl.connect(temporary=True)
    assert isinstance(db, FalkorDBManager)
    servers = [s for s in EmbeddedFalkorDB._servers.values() if s.port == db.port]  # pyright: ignore[reportPrivateUsage]
    assert len(servers) == 1
    data_dir = servers[0].data_dir
    assert data_dir.exists()
    db.close()
    assert not data_dir.exists()


def test_quick_start_command_prints_one() -> None:
    """The foundation's 'done when': connect() with nothing started by hand."""
    env = {k: v for k, v in os.environ.items() if k != "BLARIFY_LAB_URI"}
    code = (
        "import blarify_lab as b; db = b.connect(temporary=True); "
        "print(db.run_query('RETURN 1 AS x')); db.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[{'x': 1}]"


def test_select_graph_shares_the_connection_and_leaves_it_open(falkordb_server: Any) -> None:
    db = falkordb_server.manager(f"a_{uuid.uuid4().hex[:8]}")
    try:
        other = db.select_graph(f"b_{uuid.uuid4().hex[:8]}")
        other.run_query("CREATE (:X {v: 1})", {})
        assert other.run_query("MATCH (x:X) RETURN x.v AS v", {}) == [{"v": 1}]
        assert db.run_query("MATCH (x:X) RETURN count(x) AS c", {}) == [{"c": 0}]
        assert "password" not in repr(other) and other.uri.endswith(other.graph_name)
        other.delete_graph()
        other.close()
        assert db.run_query("RETURN 1 AS ok", {}) == [{"ok": 1}], "still open"
    finally:
        db.delete_graph()
        db.close()
