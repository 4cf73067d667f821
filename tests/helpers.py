"""Shared test helpers: graph fingerprints, session-state probes, subprocess sessions."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from blarify_lab.db import GraphDB
from blarify_lab.prompts import parse_prompt


def slow_llm(delay: float) -> Callable[[str], str]:
    """An LLM stand-in that takes ``delay`` seconds and answers with the prompt's path line."""

    def llm(prompt: str) -> str:
        time.sleep(delay)
        return "doc Path: " + parse_prompt(prompt).path

    return llm


class InThreads:
    """Run ``process_node(path)`` of several processors at once, each in its own thread."""

    def __init__(self, processors: list[Any], path: str) -> None:
        self.results: dict[int, str] = {}
        self._threads = [
            threading.Thread(target=self._run, args=(i, p, path)) for i, p in enumerate(processors)
        ]
        for t in self._threads:
            t.start()

    def _run(self, i: int, processor: Any, path: str) -> None:
        self.results[i] = processor.process_node(path)

    def join(self, timeout: float = 120) -> list[str]:
        """Wait for every thread; the results in processor order."""
        for t in self._threads:
            t.join(timeout)
        return [self.results[i] for i in range(len(self._threads))]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def graph_fingerprint(db: GraphDB, *, documentation: bool = False) -> str:
    """A hash of every code node's labels and properties and every edge between code nodes
    (type and end points); with ``documentation=True`` the stored documentation too."""
    keep = "" if documentation else "WHERE NOT n:DOCUMENTATION "
    nodes = db.run_query(f"MATCH (n) {keep}RETURN labels(n) AS labels, properties(n) AS props", {})
    edges = db.run_query(
        "MATCH (a)-[r]->(b) "
        + ("" if documentation else "WHERE NOT a:DOCUMENTATION ")
        + "RETURN a.path AS a, type(r) AS t, b.path AS b, properties(r) AS props",
        {},
    )
    canon = sorted(json.dumps(r, sort_keys=True, default=str) for r in nodes + edges)
    return hashlib.sha256("\n".join(canon).encode()).hexdigest()


_WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|FOREACH)\b", re.IGNORECASE)


class QueryRecorder:
    """Records ``(query, params)`` of every ``db.run_query`` call made inside the ``with`` block,
    and the rows each returned (``results``).

    The calls still go to the real database, unless ``before(query, params)`` raises first
    (to simulate a failure at a chosen point). ``writes`` keeps the queries that can write.
    """

    def __init__(
        self, db: GraphDB, before: Callable[[str, Mapping[str, Any]], None] | None = None
    ) -> None:
        self.db = db
        self.before = before
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.results: list[list[dict[str, Any]]] = []
        self._saved: Any = None

    def __enter__(self) -> Self:
        real = self.db.run_query
        self._saved = vars(self.db).get("run_query")

        def run_query(query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
            call = (query, dict(params or {}))
            self.calls.append(call)
            if self.before is not None:
                self.before(*call)
            rows = real(query, params)
            self.results.append(rows)
            return rows

        vars(self.db)["run_query"] = run_query
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._saved is None:
            del vars(self.db)["run_query"]
        else:
            vars(self.db)["run_query"] = self._saved

    @property
    def queries(self) -> list[str]:
        return [query for query, _ in self.calls]

    @property
    def writes(self) -> list[str]:
        """The recorded queries with a clause that writes (CREATE, MERGE, SET, DELETE, ...)."""
        return [query for query in self.queries if _WRITE_CLAUSE.search(query)]


def session_nodes(db: GraphDB) -> int:
    """Nodes carrying any processing_status_ key."""
    rows = db.run_query(
        "MATCH (n) WHERE any(k IN keys(n) WHERE k STARTS WITH 'processing_status_') "
        "RETURN count(n) AS c",
        {},
    )
    return int(rows[0]["c"])


def registry_nodes(db: GraphDB) -> int:
    return int(db.run_query("MATCH (s:BLARIFY_SESSION) RETURN count(s) AS c", {})[0]["c"])


def no_leftovers(db: GraphDB) -> bool:
    return session_nodes(db) == 0 and registry_nodes(db) == 0


def make_tree(db: GraphDB, children: int = 20, grandchildren: int = 3) -> int:
    """/root -> /root/cI -> /root/cI/gJ ; returns the number of nodes."""
    db.run_query(
        "CREATE (r:FOLDER {path: '/root', owner: 'team'}) WITH r "
        "UNWIND range(1, $n) AS i "
        "CREATE (r)-[:CONTAINS]->(c:FILE {path: '/root/c' + toString(i), size: i}) "
        "WITH c UNWIND range(1, $m) AS j "
        "CREATE (c)-[:CONTAINS]->(:FUNCTION {path: c.path + '/g' + toString(j), text: 'def g(): pass'})",
        {"n": children, "m": grandchildren},
    )
    return 1 + children + children * grandchildren


def start_session_process(
    env: dict[str, str], path: str, *, delay: float, workers: int = 2, heartbeat: float = 0.5,
    extra: str = "",
) -> subprocess.Popen[str]:  # fmt: skip
    """A child process that runs a session with a slow LLM; prints 'STARTED <sid>' then the text."""
    code = textwrap.dedent(
        f"""
        import sys, time
        import blarify_lab as bl
        from blarify_lab.prompts import parse_prompt
        db = bl.connect()
        def llm(prompt):
            time.sleep({delay!r})
            return "doc Path: " + parse_prompt(prompt).path
        announced = []
        def progress(session):
            if not announced:
                announced.append(1)
                print("STARTED", session.session_id, flush=True)
        proc = bl.RecursiveDFSProcessor(db, llm, max_workers={workers}, progress=progress,
                                        heartbeat_interval={heartbeat!r})
        {extra}
        text = proc.process_node({path!r})
        print("RESULT", repr(text), flush=True)
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_started(proc: subprocess.Popen[str]) -> str:
    """Block until the child prints STARTED; returns its session id."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("STARTED"):
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"child did not start: {line!r} {err}")
    return line.split()[1]


def read_result(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    for line in out.splitlines():
        if line.startswith("RESULT "):
            value: Any = ast.literal_eval(line[len("RESULT ") :])
            return str(value)
    raise AssertionError(f"no result in {out!r}")
