"""Every query the library (and the benchmarks' baseline) sends, checked by Neo4j's own Cypher front end.

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

from benchmarks import baseline_queries as baseline
from blarify_lab import queries
from blarify_lab import read_queries as rq
from blarify_lab import schema_queries as sq
from blarify_lab.schema import GraphSchema

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


def example_queries() -> list[tuple[str, str, dict[str, Any]]]:
    """Every builder called with representative arguments: ``(name, query, params)``."""
    sid = "0123456789abcdef0123456789abcdef"
    s: dict[str, Any] = {"session_id": sid}
    return [
        ("find_node_query", queries.find_node_query(), {"node_path": "/a.py"}),
        ("node_content_query", queries.node_content_query(), {"node_path": "/a.py"}),
        (
            "initialize_processing_session_query",
            queries.initialize_processing_session_query(sid),
            s,
        ),
        ("mark_nodes_query", queries.mark_nodes_query(sid), {**s, "node_ids": [1]}),
        ("expand_scope_query", queries.expand_scope_query(sid, "CALLS"), {**s, "frontier": [1]}),
        ("scope_edges_query", queries.scope_edges_query(sid, "CALLS"), s),
        ("scope_node_ids_query", queries.scope_node_ids_query(sid), s),
        ("scope_text_sizes_query", rq.scope_text_sizes_query(sid), s),
        (
            "mark_processing_status_query",
            baseline.mark_processing_status_query(sid),
            {**s, "node_path": "/a.py", "status": "completed"},
        ),
        (
            "mark_processing_status_batch_query",
            baseline.mark_processing_status_batch_query(sid),
            {**s, "node_paths": ["/a.py"], "status": "failed"},
        ),
        (
            "advance_session_query",
            queries.advance_session_query(sid),
            {
                **s,
                "docs": [
                    {
                        "node_id": 1,
                        "description": "d",
                        "input_hash": "h",
                        "model": "m",
                        "truncated": False,
                        "latency_s": 0.5,
                        "prompt_tokens": 9,
                        "completion_tokens": 3,
                        "attempts": 1,
                    }
                ],
                "started": [5],
                "completed": [1],
                "failed": [2],
                "claim": [3, 4],
                "ahead": [6],
            },
        ),
        (
            "call_measurements_query",
            queries.call_measurements_query(),
            {"model": "m", "limit": 10},
        ),
        (
            "get_processable_nodes_query",
            baseline.get_processable_nodes_query(sid, "CONTAINS"),
            {**s, "batch_size": 10},
        ),
        ("session_status_counts_query", baseline.session_status_counts_query(sid), s),
        ("cleanup_session_query", queries.cleanup_session_query(sid), s),
        (
            "cleanup_session_query",
            queries.cleanup_session_query(sid, batched=True),
            {**s, "batch_size": 10_000},
        ),
        (
            "cleanup_status_key_query",
            queries.cleanup_status_key_query("0legacy"),
            {"batch_size": 10_000},
        ),
        ("documentation_constraint_query", queries.documentation_constraint_query(), {}),
        ("documentation_index_query", queries.documentation_index_query(), {}),
        (
            "documentation_query",
            rq.documentation_query(),
            {"root_path": "/a", "folder_prefix": "/a/", "file_prefix": "/a::"},
        ),
        (
            "register_session_query",
            queries.register_session_query(),
            {
                **s,
                "root_path": "/a.py",
                "scope": "graph",
                "relationship_type": "CONTAINS",
                "host": "h",
                "pid": 1,
                "pid_start": 12345,
                "timeout_s": None,
                "heartbeat_interval_s": 5.0,
            },
        ),
        (
            "describe_session_query",
            queries.describe_session_query(),
            {**s, "schema": "blarify", "tenant": "entityId=u"},
        ),
        (
            "heartbeat_query",
            queries.heartbeat_query(),
            {**s, "completed": 1, "failed": 0, "running": 1, "queued": 0, "total": 2},
        ),
        ("delete_session_registry_query", queries.delete_session_registry_query(), s),
        ("list_registered_sessions_query", queries.list_registered_sessions_query(), {}),
        ("list_status_keys_query", queries.list_status_keys_query(), {}),
        (
            "create_nodes_query",
            queries.create_nodes_query("FUNCTION"),
            {"rows": [{"path": "/a.py"}]},
        ),
        (
            "create_edges_query",
            queries.create_edges_query("CALLS"),
            {"sources": [1], "targets": [2]},
        ),
        ("code_nodes_under_root_query", queries.code_nodes_under_root_query(), {"root": "/shop"}),
        (
            "update_nodes_query",
            queries.update_nodes_query(),
            {"node_ids": [1], "rows": [{"text": "def f(): pass", "content_hash": "ab"}]},
        ),
        ("delete_documentation_query", queries.delete_documentation_query(), {"node_ids": [1]}),
        ("delete_nodes_query", queries.delete_nodes_query(), {"node_ids": [1]}),
        ("outgoing_edges_query", queries.outgoing_edges_query("CONTAINS"), {"node_ids": [1, 2]}),
        (
            "delete_edges_query",
            queries.delete_edges_query("CALLS"),
            {"sources": [1], "targets": [2]},
        ),
        ("graph_contents_query", rq.graph_contents_query(), {}),
        ("code_node_counts_query", rq.code_node_counts_query(), {}),
        ("nodes_contents_query", rq.nodes_contents_query(), {"node_ids": [1, 2]}),
        ("graph_structure_query", rq.graph_structure_query("CALLS"), {}),
        ("children_query", rq.children_query("CALLS"), {"frontier": [1]}),
        *blarify_queries(),
    ]


def blarify_queries() -> list[tuple[str, str, dict[str, Any]]]:
    """The schema-dependent builders for a blarify graph (several hierarchy types, tenant
    parameters, its documentation layout), and the detection and adoption builders."""
    sid = "0123456789abcdef0123456789abcdef"
    schema = GraphSchema.blarify(entity_id="u", repo_id="r")
    t: dict[str, Any] = {**schema.params()}
    s: dict[str, Any] = {"session_id": sid, **t}
    docs = [{"node_id": 1, "description": "d", "input_hash": "h", "model": "m", "info_type": "x"}]
    rel = schema.hierarchy
    return [
        ("find_node_query", queries.find_node_query(schema), {**t, "node_path": "/a"}),
        ("node_content_query", queries.node_content_query(schema), {**t, "node_path": "/a"}),
        (
            "initialize_processing_session_query",
            queries.initialize_processing_session_query(sid, schema),
            s,
        ),
        ("mark_nodes_query", queries.mark_nodes_query(sid, schema), {**s, "node_ids": [1]}),
        (
            "expand_scope_query",
            queries.expand_scope_query(sid, rel, schema),
            {**s, "frontier": [1]},
        ),
        ("scope_edges_query", queries.scope_edges_query(sid, rel), {"session_id": sid}),
        (
            "advance_session_query",
            queries.advance_session_query(sid, schema),
            {
                **s,
                "docs": docs,
                "started": [5],
                "completed": [1],
                "failed": [2],
                "claim": [3],
                "ahead": [6],
            },
        ),
        ("graph_contents_query", rq.graph_contents_query(schema), t),
        ("code_node_counts_query", rq.code_node_counts_query(schema), t),
        ("nodes_contents_query", rq.nodes_contents_query(schema), {"node_ids": [1]}),
        ("graph_structure_query", rq.graph_structure_query(rel, schema), t),
        ("children_query", rq.children_query(rel, schema), {**t, "frontier": [1]}),
        (
            "documentation_query",
            rq.documentation_query(schema),
            {
                **t,
                "root_path": "/a",
                "folder_prefix": "/a/",
                "file_prefix": "/a#",
                "file_prefix_1": "/a.",
            },
        ),
        ("has_blarify_hierarchy_query", sq.has_blarify_hierarchy_query(), {}),
        ("has_code_nodes_query", sq.has_code_nodes_query(schema), {}),
        ("find_root_any_schema_query", sq.find_root_any_schema_query(), {"node_path": "/a"}),
        ("tenants_query", sq.tenants_query(schema), t),
        (
            "documentation_to_adopt_query",
            sq.documentation_to_adopt_query(schema),
            {**t, "limit": 5},
        ),
        ("taken_documentation_keys_query", sq.taken_documentation_keys_query(), {"keys": ["k"]}),
        ("adopt_documentation_query", sq.adopt_documentation_query(schema), {"rows": []}),
        ("adopt_documentation_query", sq.adopt_documentation_query(GraphSchema()), {"rows": []}),
        ("drop_legacy_constraint_query", sq.drop_legacy_constraint_query(), {}),
    ]


def _problems(result: dict[str, Any]) -> list[str]:
    return [
        f"{'error' if d['severity'] == 1 else 'warning'}: {d['message']}"
        for d in result["diagnostics"]
        if not (d["severity"] != 1 and any(a in d["message"] for a in ALLOWED_WARNINGS))
    ]


def test_every_library_query_passes_neo4j_lint() -> None:
    examples = [
        {"name": name, "query": query, "parameters": params}
        for name, query, params in example_queries()
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
        for module in (queries, rq, sq, baseline)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if name.endswith("_query") and not name.startswith("_") and fn.__module__ == module.__name__
    }
    linted = {name for name, _, _ in example_queries()}
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
