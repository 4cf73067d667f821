"""Issue 18's "Done when", on graphs that blarify 1.3.9 built (tests/blarify_fixtures).

Written from the issue's text against the API it names: ``GraphSchema`` (``GraphSchema()``,
``GraphSchema.blarify(entity_id=None, repo_id=None)``), ``schema=`` on ``RecursiveDFSProcessor``,
``documentation()``, the export and ``list_sessions``; ``summary()``'s ``schema`` column;
detection; tenants; roots by ``node_path`` or ``node_id``; documentation nodes that blarify's own
reader finds; stable keys; the CLI's ``--schema/--entity-id/--repo-id``. Every graph is loaded
both as blarify's Neo4j manager writes it (labels ``[KIND, NODE]``, tenant properties) and as
its FalkorDB manager does (no labels) where the case applies to both.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import GraphSchema, RecursiveDFSProcessor
from blarify_lab.cli import main
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.documentation import export_markdown

from .blarify_graphs import (
    LAYOUT_IDS,
    LAYOUTS,
    Layout,
    add_blarify_documentation,
    blarify_reader,
    fixture,
    load_blarify_fixture,
)
from .helpers import graph_fingerprint, no_leftovers, wait_for

pytestmark = pytest.mark.neo4j_integration

ROOT = "/blarify/repo/json"
DECODE = "/blarify/repo/json/decoder.py#JSONDecoder.decode"
JSON_NODES = 41
KINDS = {"FOLDER": 1, "FILE": 6, "CLASS": 3, "FUNCTION": 31}


class CountingLLM:
    """A provider that counts its calls, keeps its prompts, and answers deterministically
    (a digest of the prompt: the same prompt gets the same description)."""

    model = "counting-blarify-1"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.prompts: list[str] = []
        self.lock = threading.Lock()
        self.gate = gate

    @property
    def calls(self) -> int:
        return len(self.prompts)

    def get_completion(self, prompt: str) -> str:
        if self.gate is not None:
            self.gate.wait(60)
        with self.lock:
            self.prompts.append(prompt)
        return "Described " + hashlib.sha1(prompt.encode()).hexdigest()[:12]


def _proc(db: GraphDB, llm: Any, schema: Any = None, **kwargs: Any) -> RecursiveDFSProcessor:
    if schema is not None:
        kwargs["schema"] = schema
    return RecursiveDFSProcessor(db, llm, max_workers=4, progress=False, **kwargs)


def _ids() -> dict[str, str]:
    """node_path -> node_id of the json fixture."""
    return {
        n["properties"]["node_path"]: n["properties"]["node_id"] for n in fixture("json")["nodes"]
    }


def _docs_of(db: GraphDB, node_id: str, entity_id: str | None = None) -> list[dict[str, Any]]:
    """Every documentation node (ours or blarify's, labelled or not) describing code node
    ``node_id`` (of ``entity_id``)."""
    tenant = " AND c.entityId = $e" if entity_id else ""
    return db.run_query(
        "MATCH (d)-[:DESCRIBES]->(c) WHERE c.node_id = $id AND c.layer = 'code'"
        f"{tenant} RETURN properties(d) AS d",
        {"id": node_id, "e": entity_id},
    )


def _all_docs(db: GraphDB) -> list[dict[str, Any]]:
    return db.run_query(
        "MATCH (d) WHERE d:DOCUMENTATION OR d.layer = 'documentation' RETURN properties(d) AS d",
        {},
    )


# ------------------------------------------------------------------------------ the schema
def test_graph_schema_presets() -> None:
    from blarify_lab.schema import GraphSchema as FromModule

    assert FromModule is GraphSchema
    default = GraphSchema()
    blarify = GraphSchema.blarify()
    assert default != blarify
    assert set(blarify.hierarchy_relationships) == {
        "CONTAINS",
        "FUNCTION_DEFINITION",
        "CLASS_DEFINITION",
    }
    assert blarify.identity_property == "node_path" and blarify.key_property == "node_id"
    assert default.identity_property == "path"
    assert tuple(default.hierarchy_relationships) == ("CONTAINS",)
    tenant = GraphSchema.blarify(entity_id="user-a", repo_id="json")
    assert tenant != blarify
    assert GraphSchema.blarify(entity_id="user-a", repo_id="json") == tenant, "a value"


# ------------------------------------------------------------------ the whole graph, detected
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_session_from_the_folder_documents_every_code_node(
    db_manager: GraphDB, layout: Layout
) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout)
    llm = CountingLLM()
    proc = _proc(db_manager, llm)  # no schema given: detected
    text = proc.process_node(ROOT, scope="subtree")
    assert text
    assert llm.calls == JSON_NODES, "all 41 nodes, not the 7 that CONTAINS reaches"
    session = proc.last_session
    assert session is not None
    assert session.summary()["schema"].iloc[0] == "blarify"
    assert no_leftovers(db_manager)
    docs = _all_docs(db_manager)
    assert len(docs) == JSON_NODES, "one documentation node per code node"
    assert {d["d"]["source_node_id"] for d in docs} == set(_ids().values())


def test_label_less_layout_shows_kinds_and_never_documents_documentation(
    db_manager: GraphDB,
) -> None:
    """blarify's FalkorDB layout: kinds only in ``label``; its documentation nodes are not code."""
    load_blarify_fixture(db_manager, "json", layout="falkordb")
    for node_id in list(_ids().values())[:5]:
        add_blarify_documentation(db_manager, node_id, "blarify's text", layout="falkordb")
    llm = CountingLLM()
    proc = _proc(db_manager, llm)
    proc.process_node(ROOT, scope="graph")
    assert llm.calls == JSON_NODES, "blarify's documentation nodes are not documented as code"
    assert not any("blarify's text" in p.split("## Children")[0] for p in llm.prompts)
    assert proc.last_session is not None
    report = proc.last_session.report()
    assert len(report) == JSON_NODES
    kinds = Counter(str(labels) for labels in report["labels"])
    assert sum(n for k, n in kinds.items() if "FUNCTION" in k) == KINDS["FUNCTION"], kinds
    assert sum(n for k, n in kinds.items() if "FILE" in k) == KINDS["FILE"], kinds
    assert len(_all_docs(db_manager)) == JSON_NODES


def test_a_seed_graph_is_detected_as_default(db_manager: GraphDB, tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text("def f():\n    return 1\n")
    bl.load_python_package(db_manager, package)
    proc = _proc(db_manager, CountingLLM())
    proc.process_node("/pkg", scope="subtree")
    assert proc.last_session is not None
    assert proc.last_session.summary()["schema"].iloc[0] == "default"


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_the_estimate_counts_every_code_node(db_manager: GraphDB, layout: Layout) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout)
    proc = _proc(db_manager, CountingLLM(), GraphSchema.blarify())
    before = proc.estimate(ROOT, scope="subtree")
    assert (int(before["nodes"].iloc[0]), int(before["llm_calls"].iloc[0])) == (JSON_NODES,) * 2
    proc.process_node(ROOT, scope="subtree")
    after = proc.estimate(ROOT, scope="subtree")
    assert (int(after["llm_calls"].iloc[0]), int(after["cached"].iloc[0])) == (0, JSON_NODES)


# --------------------------------------------------------------------------------- tenants
def test_several_tenants_and_none_chosen_is_a_value_error_naming_them(
    db_manager: GraphDB,
) -> None:
    load_blarify_fixture(db_manager, "json", entity_id="user-a", repo_id="json")
    load_blarify_fixture(db_manager, "json", entity_id="user-b", repo_id="json-b")
    before = graph_fingerprint(db_manager, documentation=True)
    llm = CountingLLM()
    with pytest.raises(ValueError) as err:
        _proc(db_manager, llm).process_node(ROOT)
    message = str(err.value)
    assert "user-a" in message and "user-b" in message and "json-b" in message
    assert llm.calls == 0
    assert graph_fingerprint(db_manager, documentation=True) == before, "nothing marked"
    assert no_leftovers(db_manager)
    with pytest.raises(ValueError, match="user-b"):
        _proc(db_manager, llm).estimate(ROOT)
    chosen = GraphSchema.blarify(entity_id="user-b", repo_id="json-b")
    estimate = _proc(db_manager, llm).estimate(ROOT, scope="graph", schema=chosen)
    assert int(estimate["nodes"].iloc[0]) == JSON_NODES, "estimate(schema=) keeps to the tenant"
    assert graph_fingerprint(db_manager, documentation=True) == before


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_scope_graph_never_leaves_the_tenant(db_manager: GraphDB, layout: Layout) -> None:
    for entity, repo in (("user-a", "json"), ("user-b", "json"), ("user-a", "other")):
        load_blarify_fixture(
            db_manager,
            "json",
            layout=layout,
            entity_id=entity,
            repo_id=repo,
            tenant_properties=True,
        )
    load_blarify_fixture(
        db_manager,
        "calls",
        layout=layout,
        entity_id="user-a",
        repo_id="calls",
        tenant_properties=True,
    )
    llm = CountingLLM()
    schema = GraphSchema.blarify(entity_id="user-a", repo_id="json")
    _proc(db_manager, llm, schema).process_node(ROOT, scope="graph")
    assert llm.calls == JSON_NODES, "the other repositories and users are not documented"
    tenants = Counter((d["d"].get("entityId"), d["d"].get("repoId")) for d in _all_docs(db_manager))
    assert tenants == Counter({("user-a", "json"): JSON_NODES})
    assert no_leftovers(db_manager)


def test_sessions_list_shows_the_tenant(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json", entity_id="user-a", repo_id="json")
    load_blarify_fixture(db_manager, "json", entity_id="user-b", repo_id="json")
    gate = threading.Event()
    proc = _proc(db_manager, CountingLLM(gate), GraphSchema.blarify("user-b", "json"))
    handle = proc.start(ROOT, scope="graph")
    try:
        assert wait_for(lambda: len(bl.list_sessions(db_manager)) == 1, 30)
        listed = bl.list_sessions(db_manager)
        tenant = str(listed["tenant"].iloc[0])
        assert "user-b" in tenant and "user-a" not in tenant
    finally:
        gate.set()
        handle.result()
    assert no_leftovers(db_manager)


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_blarify_calls_with_a_cycle(db_manager: GraphDB, layout: Layout) -> None:
    """The call graph blarify found (jedi-language-server): Grid.label -> describe ->
    Grid.balanced -> Grid.cells and is_even <-> is_odd, a cycle."""
    loaded = load_blarify_fixture(db_manager, "calls", layout=layout, repo_id="calls")
    llm = CountingLLM()
    proc = _proc(db_manager, llm, GraphSchema.blarify())
    root = "/blarify/repo/calls_pkg/shapes.py#Grid.label"
    text = proc.process_node(root, use_hierarchy=False, scope="subtree")
    assert llm.calls == 6, "label, describe, balanced, cells, is_even, is_odd"
    assert "[CYCLE_DETECTED]" in text
    assert proc.last_session is not None
    assert list(proc.last_session.report()["cycle"]).count(True) == 1
    assert no_leftovers(db_manager)
    again = proc.process_node(loaded["node_ids"][root], use_hierarchy=False, scope="subtree")
    assert (llm.calls, again) == (6, text), "by node_id, nothing asked again"


# ------------------------------------------------------------------------- roots by identity
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_a_method_is_a_root_by_node_path_or_node_id(db_manager: GraphDB, layout: Layout) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout, tenant_properties=True)
    load_blarify_fixture(
        db_manager, "json", layout=layout, entity_id="user-b", tenant_properties=True
    )
    schema = GraphSchema.blarify(entity_id="user-a", repo_id="json")
    llm = CountingLLM()
    by_path = _proc(db_manager, llm, schema).process_node(DECODE, scope="subtree")
    assert llm.calls == 1, "a method is a leaf of its own session"
    assert "decode" in llm.prompts[0]
    by_id = _proc(db_manager, llm, schema).process_node(_ids()[DECODE], scope="subtree")
    assert llm.calls == 1, "the same node: its stored documentation is reused"
    assert by_id == by_path
    assert len(_docs_of(db_manager, _ids()[DECODE], "user-a")) == 1
    assert _docs_of(db_manager, _ids()[DECODE], "user-b") == [], "the other tenant's twin"


def test_a_value_matching_several_nodes_is_an_error_listing_them(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json", entity_id="user-a", repo_id="json")
    load_blarify_fixture(db_manager, "json", entity_id="user-a", repo_id="json-copy")
    before = graph_fingerprint(db_manager, documentation=True)
    llm = CountingLLM()
    schema = GraphSchema.blarify(entity_id="user-a")  # two repositories of one user
    for root in (DECODE, _ids()[DECODE]):
        with pytest.raises(ValueError) as err:
            _proc(db_manager, llm, schema).process_node(root, scope="subtree")
        message = str(err.value)
        assert "json-copy" in message and re.search(r"\bjson\b", message.replace("json-copy", ""))
    assert llm.calls == 0
    assert graph_fingerprint(db_manager, documentation=True) == before
    assert no_leftovers(db_manager)


def test_a_root_is_looked_up_within_the_tenant(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json", entity_id="user-a", repo_id="json")
    load_blarify_fixture(db_manager, "calls", entity_id="user-b", repo_id="calls")
    schema = GraphSchema.blarify(entity_id="user-b", repo_id="calls")
    with pytest.raises(LookupError):
        _proc(db_manager, CountingLLM(), schema).process_node(DECODE)


# --------------------------------------------------------------------------------- prompts
def _children(prompt: str) -> list[str]:
    section = prompt.split("## Children", 1)
    if len(section) < 2:
        return []
    body = section[1].split("\n## ", 1)[0]
    return [line[2:] for line in body.splitlines() if line.startswith("- ")]


def test_prompts_name_children_by_kind_and_name(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json")
    llm = CountingLLM()
    _proc(db_manager, llm).process_node(ROOT, scope="subtree")
    listings = [_children(p) for p in llm.prompts]
    folder = next(c for c in listings if any("empty-env.json" in line for line in c))
    assert len(folder) == 6
    for name in ("__init__.py", "decoder.py", "encoder.py", "scanner.py", "tool.py"):
        assert any("FILE" in line and name in line for line in folder), (name, folder)
    decoder = next(c for c in listings if any("py_scanstring" in line for line in c))
    assert len(decoder) == 6
    assert any("CLASS" in line and "JSONDecoder" in line for line in decoder), decoder
    assert any("FUNCTION" in line and "py_scanstring" in line for line in decoder), decoder
    for listing in listings:
        heads = [line.split(": ", 1)[0] for line in listing]
        assert len(set(heads)) == len(heads), f"children told apart: {listing}"


# ------------------------------------------------------------- documentation blarify reads
def test_blarify_reader_finds_every_description(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json", entity_id="user-a", repo_id="json")
    load_blarify_fixture(db_manager, "json", entity_id="user-b", repo_id="json")
    schema = GraphSchema.blarify(entity_id="user-a", repo_id="json")
    proc = _proc(db_manager, CountingLLM(), schema)
    proc.process_node(ROOT, scope="subtree")
    session_id = proc.last_session.session_id if proc.last_session else None
    code = {n["properties"]["node_id"]: n for n in fixture("json")["nodes"]}
    for node_id, node in code.items():
        text = blarify_reader(db_manager, node_id, "user-a", ["json"])
        assert text and text.startswith("Described "), node["properties"]["node_path"]
        assert blarify_reader(db_manager, node_id, "user-b") is None, "the other user's twin"
        (doc,) = (r["d"] for r in _docs_of(db_manager, node_id, "user-a"))
        assert doc["content"] == text
        assert doc["layer"] == "documentation"
        assert doc["source_node_id"] == node_id
        assert doc["source_path"] in (node["properties"]["path"], node["properties"]["node_path"])
        assert node["label"] in list(doc["source_labels"])
        assert doc["info_type"] and doc["source_type"]
        assert (doc["entityId"], doc["repoId"]) == ("user-a", "json")
        assert doc["input_hash"] and doc["model"] == CountingLLM.model
        assert doc["session_id"] == session_id and doc["updated_at"]


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_blarify_made_documentation_is_updated_not_duplicated(
    db_manager: GraphDB, layout: Layout
) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout)
    decode = _ids()[DECODE]
    add_blarify_documentation(db_manager, decode, "blarify wrote this", layout=layout)
    llm = CountingLLM()
    proc = _proc(db_manager, llm, GraphSchema.blarify())
    proc.process_node(ROOT, scope="subtree")
    assert llm.calls == JSON_NODES, "blarify's text has no input_hash: it is not reused"
    (doc,) = (r["d"] for r in _docs_of(db_manager, decode))
    assert doc["content"].startswith("Described ") and doc["input_hash"]
    assert len(_all_docs(db_manager)) == JSON_NODES
    if layout == "neo4j":
        assert blarify_reader(db_manager, decode, "user-a") == doc["content"]
    proc.process_node(ROOT, scope="subtree")
    assert llm.calls == JSON_NODES, "a re-run costs 0 calls"
    # a stored input_hash that does not match is not reused
    db_manager.run_query(
        "MATCH (d)-[:DESCRIBES]->(c) WHERE c.node_id = $id SET d.input_hash = 'stale'",
        {"id": decode},
    )
    proc.process_node(ROOT, scope="subtree")
    assert llm.calls == JSON_NODES + 1, "only the node whose hash changed is asked again"
    assert len(_all_docs(db_manager)) == JSON_NODES


# ---------------------------------------------------------------------------- stable keys
def _internal_ids(db: GraphDB) -> dict[str, int]:
    """node_id -> the database's internal id of each code node."""
    rows = db.run_query("MATCH (n) WHERE n.layer = 'code' RETURN n.node_id AS k, id(n) AS i", {})
    return {str(r["k"]): int(r["i"]) for r in rows}


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_a_rebuilt_graph_costs_zero_calls(db_manager: GraphDB, layout: Layout) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout)
    llm = CountingLLM()
    proc = _proc(db_manager, llm, GraphSchema.blarify())
    proc.process_node(ROOT, scope="subtree")
    assert llm.calls == JSON_NODES
    first_ids = _internal_ids(db_manager)
    # blarify rebuilds: the code nodes go, the same code comes back under new internal ids
    db_manager.run_query("MATCH (n) WHERE n.layer = 'code' DETACH DELETE n", {})
    db_manager.run_query("UNWIND range(1, $n) AS i CREATE (:FILLER {i: i})", {"n": JSON_NODES})
    load_blarify_fixture(db_manager, "json", layout=layout)
    db_manager.run_query("MATCH (f:FILLER) DELETE f", {})
    now = _internal_ids(db_manager)
    assert now != first_ids, "the rebuilt nodes have other internal ids"
    if isinstance(db_manager, FalkorDBManager):  # reuses freed ids at once: the fillers took them
        assert set(now.values()).isdisjoint(first_ids.values())
    proc.process_node(ROOT, scope="subtree")
    assert llm.calls == JSON_NODES, "a rebuilt graph of unchanged code costs 0 calls"
    assert len(_all_docs(db_manager)) == JSON_NODES, "one documentation node per code node"
    for node_id in _ids().values():
        assert len(_docs_of(db_manager, node_id)) == 1
        if layout == "neo4j":
            assert blarify_reader(db_manager, node_id, "user-a"), "described again"


def test_internal_ids_reused_by_other_code_reuse_nothing(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json")
    llm = CountingLLM()
    _proc(db_manager, llm, GraphSchema.blarify()).process_node(ROOT, scope="subtree")
    # the databases hand the deleted nodes' internal ids to the next nodes created
    db_manager.run_query("MATCH (n) WHERE n.layer = 'code' DETACH DELETE n", {})
    loaded = load_blarify_fixture(db_manager, "calls", repo_id="calls")
    _proc(db_manager, llm, GraphSchema.blarify("user-a", "calls")).process_node(
        loaded["root"], scope="subtree"
    )
    assert llm.calls == JSON_NODES + loaded["nodes"], "another graph's documentation is not its own"


# ------------------------------------------------------------------ documentation, export
@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_documentation_has_one_row_per_code_node_of_the_tenant(
    db_manager: GraphDB, layout: Layout
) -> None:
    for entity in ("user-a", "user-b"):
        load_blarify_fixture(
            db_manager, "json", layout=layout, entity_id=entity, tenant_properties=True
        )
        schema = GraphSchema.blarify(entity_id=entity, repo_id="json")
        _proc(db_manager, CountingLLM(), schema).process_node(ROOT, scope="subtree")
    schema = GraphSchema.blarify(entity_id="user-a", repo_id="json")
    frame = bl.documentation(db_manager, ROOT, schema=schema)
    assert len(frame) == JSON_NODES
    assert {"key", "kind", "name", "tenant", "description"} <= set(frame.columns)
    assert set(frame["key"]) == set(_ids().values())
    assert dict(Counter(frame["kind"])) == KINDS
    assert "decode" in set(frame["name"]) and "JSONDecoder" in set(frame["name"])
    assert all("user-a" in str(t) and "user-b" not in str(t) for t in frame["tenant"])
    assert frame["description"].str.startswith("Described ").all()


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_export_has_one_page_per_file_with_a_section_per_definition(
    db_manager: GraphDB, layout: Layout, tmp_path: Path
) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout)
    schema = GraphSchema.blarify()
    _proc(db_manager, CountingLLM(), schema).process_node(ROOT, scope="subtree")
    out = tmp_path / "docs"
    pages = export_markdown(db_manager, ROOT, out, schema=schema)
    names = sorted(p.relative_to(out).as_posix() for p in pages)
    files = ["__init__.py", "decoder.py", "empty-env.json", "encoder.py", "scanner.py", "tool.py"]
    assert names == sorted([f"{f}.md" for f in files] + ["index.md"])
    decoder = (out / "decoder.py.md").read_text()
    headings = [line for line in decoder.splitlines() if re.match(r"^#{2,} ", line)]
    assert len(headings) == 11, headings  # 2 classes, 5 methods, 4 functions
    for name in ("JSONDecodeError", "JSONDecoder", "raw_decode", "py_scanstring", "JSONObject"):
        assert any(name.replace("_", "\\_") in h or name in h for h in headings), (name, headings)
    assert decoder.count("Described ") == 12, "the file's description and its 11 definitions'"


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture
def cli_graph(falkordb_server: Any) -> Any:
    name = f"cli_blarify_{uuid.uuid4().hex[:8]}"
    db = falkordb_server.manager(name)
    yield db, f"{falkordb_server.uri}/{name}"
    db.delete_graph()
    db.close()


def test_cli_schema_and_tenant_options(cli_graph: Any, capsys: pytest.CaptureFixture[str]) -> None:
    db, uri = cli_graph
    load_blarify_fixture(db, "json", entity_id="user-a", repo_id="json")
    load_blarify_fixture(db, "json", entity_id="user-b", repo_id="json")
    base = ["process", ROOT, "--uri", uri, "--no-progress", "--workers", "2"]
    assert main(base) == 2, "two tenants, none chosen"
    err = capsys.readouterr().err
    assert "user-a" in err and "user-b" in err
    code = main([*base, "--schema", "blarify", "--entity-id", "user-a", "--repo-id", "json"])
    assert code == 0
    out = capsys.readouterr()
    database_line = next(line for line in out.err.splitlines() if "database" in line)
    assert "blarify" in database_line, "the CLI's database line names the schema"
    assert f"{JSON_NODES} LLM calls" in out.err
    assert main([*base, "--schema", "auto", "--entity-id", "user-b", "--repo-id", "json"]) == 0
    assert main(["sessions", "list", "--uri", uri]) == 0
    assert len(_all_docs(db)) == 2 * JSON_NODES
    assert no_leftovers(db)


def test_cli_rejects_an_unknown_schema(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["process", ROOT, "--schema", "neo4j"])
    assert exit_.value.code == 2
    assert "--schema" in capsys.readouterr().err
