"""Every query the library sends, checked by Neo4j's own Cypher front end.

No Neo4j server runs here, so `@neo4j-cypher/language-support` (``lintCypherQuery``, pinned in
``tests/cypher_lint/package-lock.json``) does Neo4j's semantic analysis in Node. In CI a missing
Node or lint install is a failure, not a skip.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from blarify_lab import queries

LINT_DIR = Path(__file__).parent / "cypher_lint"

# The library uses id() on purpose: FalkorDB has no elementId(). Neo4j 5 still runs id() and
# only warns that it is deprecated; that warning, and nothing else, is allowed.
ALLOWED_WARNINGS = ("'id' has been replaced by 'elementId",)


def lint_queries(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the Node lint over ``[{name, query, parameters}]``; returns their diagnostics."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "Node.js is not installed"
    elif not (LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support").is_dir():
        problem = "the lint harness is not installed: run `npm ci --prefix tests/cypher_lint`"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Neo4j Cypher lint cannot run in CI: {problem}")
        pytest.skip(f"Neo4j Cypher lint skipped: {problem}")
    assert node is not None
    out = subprocess.run(
        [node, "lint.mjs"],
        cwd=LINT_DIR,
        input=json.dumps(items),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: list[dict[str, Any]] = json.loads(out.stdout)
    return result


def _problems(result: dict[str, Any]) -> list[str]:
    return [
        f"{'error' if d['severity'] == 1 else 'warning'}: {d['message']}"
        for d in result["diagnostics"]
        if not (d["severity"] != 1 and any(a in d["message"] for a in ALLOWED_WARNINGS))
    ]


def test_every_library_query_passes_neo4j_lint() -> None:
    examples = [
        {"name": name, "query": query, "parameters": params}
        for name, query, params in queries.example_queries()
    ]
    failures = [
        f"{r['name']}: {'; '.join(_problems(r))}\n    {r['query']}"
        for r in lint_queries(examples)
        if _problems(r)
    ]
    assert not failures, "Neo4j rejects these queries:\n" + "\n".join(failures)


def test_every_query_builder_is_linted() -> None:
    builders = {
        name
        for name, fn in inspect.getmembers(queries, inspect.isfunction)
        if name.endswith("_query")
        and not name.startswith("_")
        and fn.__module__ == queries.__name__
    }
    linted = {name for name, _, _ in queries.example_queries()}
    assert builders, "no builders found"
    assert builders <= linted, f"builders missing from example_queries(): {builders - linted}"


def test_lint_rejects_create_then_unwind_and_syntax_errors() -> None:
    bad = (
        "CREATE (root:FILE {path: '/root.py'})\n"
        "UNWIND range(1, 100) as i\n"
        "CREATE (child:FILE {path: '/child' + i + '.py'})"
    )
    good = bad.replace("\nUNWIND", "\nWITH root\nUNWIND")
    results = lint_queries(
        [
            {"name": "bad", "query": bad, "parameters": {}},
            {"name": "syntax", "query": "MATCH (n RETURN n", "parameters": {}},
            {"name": "good", "query": good, "parameters": {}},
            {"name": "param", "query": "RETURN $missing AS x", "parameters": {}},
        ]
    )
    by_name = {r["name"]: r for r in results}
    assert any(
        d["severity"] == 1 and "WITH" in d["message"] for d in by_name["bad"]["diagnostics"]
    ), by_name["bad"]
    assert any(d["severity"] == 1 for d in by_name["syntax"]["diagnostics"])
    assert _problems(by_name["good"]) == []
    assert _problems(by_name["param"]), "undeclared parameters are caught"
