"""GraphSchema on graphs blarify built (the fixtures of ``tests/blarify_graphs.py``): the whole
hierarchy, roots by node_path or node_id, tenants that never mix, documentation blarify's own
reader finds, and stable keys (a re-run and a rebuilt graph cost no LLM call)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab.db import GraphDB
from blarify_lab.detection import detect_schema, resolve_schema
from blarify_lab.prompts import parse_prompt
from tests.blarify_graphs import add_blarify_documentation, blarify_reader, load_blarify_fixture

from .helpers import no_leftovers

DECODE = "/blarify/repo/json/decoder.py#JSONDecoder.decode"


class Recorder:
    """An LLM that answers from the prompt's node path and records every prompt."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.lock = threading.Lock()

    def get_completion(self, prompt: str) -> str:
        with self.lock:
            self.prompts.append(prompt)
        return f"Documentation of {parse_prompt(prompt).path}"


def _processor(db: GraphDB, llm: Recorder, **kwargs: Any) -> bl.RecursiveDFSProcessor:
    return bl.RecursiveDFSProcessor(db, llm, max_workers=4, progress=False, **kwargs)


def _docs(db: GraphDB) -> list[dict[str, Any]]:
    return db.run_query(
        "MATCH (d:DOCUMENTATION)-[:DESCRIBES]->(n) RETURN d.doc_key AS key, d.content AS content, "
        "d.entityId AS entity, n.entityId AS code_entity, n.node_id AS node_id",
        {},
    )


@pytest.mark.parametrize("layout", ["neo4j", "falkordb"])
def test_a_session_from_the_folder_documents_all_41_code_nodes(
    db_manager: GraphDB, layout: str
) -> None:
    graph = load_blarify_fixture(db_manager, "json", layout=layout)  # type: ignore[arg-type]
    assert detect_schema(db_manager).name == "blarify"
    llm = Recorder()
    proc = _processor(db_manager, llm)
    text = proc.process_node(graph["root"])
    session = proc.last_session
    assert session is not None
    assert session.counts["completed"] == 41 and session.total == 41
    assert session.summary()["schema"].iloc[0] == "blarify"
    assert text.startswith(graph["root"])
    assert len(llm.prompts) == 41
    docs = _docs(db_manager)
    assert len(docs) == 41 and len({d["key"] for d in docs}) == 41
    assert no_leftovers(db_manager)
    # the folder's file children are named by kind and name, not by a shared path
    folder = next(p for p in llm.prompts if parse_prompt(p).path == graph["root"])
    assert "FILE decoder.py (/blarify/repo/json/decoder.py)" in folder
    decoder = next(
        p for p in llm.prompts if parse_prompt(p).path == "/blarify/repo/json/decoder.py"
    )
    assert "CLASS JSONDecoder (/blarify/repo/json/decoder.py#JSONDecoder)" in decoder
    # a re-run costs nothing
    again = _processor(db_manager, Recorder())
    assert again.process_node(graph["root"]) == text
    assert again.last_session is not None and again.last_session.llm_calls == 0


def test_a_method_is_a_root_by_node_path_or_node_id(db_manager: GraphDB) -> None:
    graph = load_blarify_fixture(db_manager, "json")
    for name in (DECODE, graph["node_ids"][DECODE]):
        proc = _processor(db_manager, Recorder(), scope="subtree")
        text = proc.process_node(name)
        assert text.startswith(DECODE)
        assert proc.last_session is not None and proc.last_session.total == 1
    # a file's `path` is shared by the file and its definitions: never "the first"
    with pytest.raises(bl.AmbiguousNodeError, match="code nodes") as info:
        _processor(db_manager, Recorder()).process_node("file:///blarify/repo/json/decoder.py")
    assert "/blarify/repo/json/decoder.py" in info.value.matches and DECODE in info.value.matches


def test_a_name_matching_several_nodes_is_an_error_listing_them(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (:FUNCTION {path: '/a.py::f'}), (:FUNCTION {path: '/a.py::f'})", {}
    )
    with pytest.raises(bl.AmbiguousNodeError, match=r"2 code nodes") as info:
        _processor(db_manager, Recorder()).process_node("/a.py::f")
    assert info.value.matches == ["/a.py::f", "/a.py::f"]
    assert no_leftovers(db_manager)


def test_tenants_never_mix(db_manager: GraphDB) -> None:
    a = load_blarify_fixture(db_manager, "json", entity_id="user-a")
    load_blarify_fixture(db_manager, "json", entity_id="user-b")
    with pytest.raises(ValueError, match=r"user-a.*user-b") as info:
        _processor(db_manager, Recorder()).process_node(a["root"])
    assert isinstance(info.value, bl.AmbiguousTenantError)
    assert no_leftovers(db_manager) and _docs(db_manager) == []
    schema = bl.GraphSchema.blarify(entity_id="user-a")
    proc = _processor(db_manager, Recorder(), schema=schema)
    proc.process_node(a["root"])  # scope="graph": the whole graph, of this tenant only
    assert proc.last_session is not None and proc.last_session.total == 41
    assert proc.last_session.tenant == "entityId=user-a"
    docs = _docs(db_manager)
    assert len(docs) == 41
    assert {d["entity"] for d in docs} == {d["code_entity"] for d in docs} == {"user-a"}
    # the same node_id in the other tenant is another node: a root there is found there
    other = _processor(db_manager, Recorder(), schema=bl.GraphSchema.blarify(entity_id="user-b"))
    other.process_node(a["node_ids"][DECODE], scope="subtree")
    assert len(_docs(db_manager)) == 42
    # blarify's reader finds every description, each in its own tenant
    for path, node_id in a["node_ids"].items():
        assert blarify_reader(db_manager, node_id, "user-a") == f"Documentation of {path}"
    assert (
        blarify_reader(db_manager, a["node_ids"][DECODE], "user-b") == f"Documentation of {DECODE}"
    )
    frame = bl.documentation(db_manager, a["root"], schema=schema)
    assert len(frame) == 41 and set(frame["tenant"]) == {"entityId=user-a, repoId=json"}
    assert set(frame["kind"]) == {"FOLDER", "FILE", "CLASS", "FUNCTION"}


def test_a_rebuilt_graph_costs_no_call(db_manager: GraphDB) -> None:
    graph = load_blarify_fixture(db_manager, "json")
    _processor(db_manager, Recorder()).process_node(graph["root"])
    before = sorted(d["key"] for d in _docs(db_manager))
    db_manager.run_query("MATCH (n:NODE) DETACH DELETE n", {})  # blarify rebuilds the graph
    load_blarify_fixture(db_manager, "json")
    llm = Recorder()
    proc = _processor(db_manager, llm)
    proc.process_node(graph["root"])
    assert llm.prompts == []
    assert proc.last_session is not None and proc.last_session.cached == 41
    assert sorted(d["key"] for d in _docs(db_manager)) == before  # re-attached, not duplicated


def test_blarify_made_documentation_is_updated_never_duplicated(db_manager: GraphDB) -> None:
    graph = load_blarify_fixture(db_manager, "json")
    node_id = graph["node_ids"][DECODE]
    add_blarify_documentation(db_manager, node_id, "blarify's own words")
    assert blarify_reader(db_manager, node_id, "user-a") == "blarify's own words"
    llm = Recorder()
    _processor(db_manager, llm, scope="subtree").process_node(DECODE)
    assert len(llm.prompts) == 1  # no input_hash: not reused
    rows = db_manager.run_query(
        "MATCH (d)-[:DESCRIBES]->(n {node_id: $id}) RETURN d.content AS content, "
        "d.layer AS layer, d.input_hash IS NOT NULL AS ours",
        {"id": node_id},
    )
    assert rows == [
        {"content": f"Documentation of {DECODE}", "layer": "documentation", "ours": True}
    ]
    assert blarify_reader(db_manager, node_id, "user-a") == f"Documentation of {DECODE}"
    again = Recorder()
    _processor(db_manager, again, scope="subtree").process_node(DECODE)
    assert again.prompts == []


def test_documentation_keyed_by_internal_id_is_carried_over_once(db_manager: GraphDB) -> None:
    db_manager.run_query(
        "CREATE (f:FILE {path: '/m.py', name: 'm.py'})-[:CONTAINS]->"
        "(:FUNCTION {path: '/m.py::g', name: 'g'})",
        {},
    )
    _processor(db_manager, Recorder()).process_node("/m.py")
    # as the previous version stored it: keyed by the code node's internal id
    db_manager.run_query(
        "MATCH (d:DOCUMENTATION)-[:DESCRIBES]->(n) SET d.node_id = id(n) REMOVE d.doc_key", {}
    )
    llm = Recorder()
    proc = _processor(db_manager, llm)
    proc.process_node("/m.py")
    assert llm.prompts == []  # carried over, so reused
    rows = db_manager.run_query(
        "MATCH (d:DOCUMENTATION) RETURN d.doc_key AS key, d.node_id AS legacy ORDER BY key", {}
    )
    assert rows == [{"key": "/m.py", "legacy": None}, {"key": "/m.py::g", "legacy": None}]


def test_schema_values_are_validated_and_presets_differ() -> None:
    assert bl.GraphSchema() == bl.GraphSchema()
    blarify = bl.GraphSchema.blarify(entity_id="u", repo_id="r")
    assert blarify.hierarchy_relationships == (
        "CONTAINS",
        "FUNCTION_DEFINITION",
        "CLASS_DEFINITION",
    )
    assert (blarify.identity_property, blarify.key_property) == ("node_path", "node_id")
    assert blarify.params() == {"tenant_entityId": "u", "tenant_repoId": "r"}
    assert "'u'" not in blarify.code_filter("n")  # values travel as parameters
    with pytest.raises(ValueError, match="relationship type"):
        bl.GraphSchema(hierarchy_relationships=("CONTAINS]->() DETACH DELETE n //",))
    with pytest.raises(ValueError, match="property"):
        bl.GraphSchema(identity_property="path` = 1 //")
    with pytest.raises(AttributeError):
        blarify.name = "default"  # type: ignore[misc]


def test_a_single_tenant_is_chosen_and_a_default_graph_stays_default(db_manager: GraphDB) -> None:
    db_manager.run_query("CREATE (:FILE {path: '/x.py'})", {})
    assert resolve_schema(db_manager).name == "default"
    db_manager.run_query("MATCH (n) DETACH DELETE n", {})
    load_blarify_fixture(db_manager, "json", repo_id="r1")
    schema = resolve_schema(db_manager)
    assert schema.name == "blarify" and schema.tenant_values == {
        "entityId": "user-a",
        "repoId": "r1",
    }


def test_export_has_one_page_per_file_with_a_section_per_definition(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    graph = load_blarify_fixture(db_manager, "json", layout="falkordb")
    _processor(db_manager, Recorder()).process_node(graph["root"])
    pages = bl.export_markdown(db_manager, graph["root"], tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in pages)
    assert "index.md" in names and "decoder.py.md" in names
    assert len(names) == 7  # the folder and its 6 files; definitions are sections
    decoder = (tmp_path / "decoder.py.md").read_text()
    assert "JSONDecoder (class)" in decoder and "JSONDecoder.decode (function)" in decoder
    assert "py\\_scanstring (function)" in decoder
    frame = bl.documentation(db_manager, graph["root"])
    assert len(frame) == 41
    assert bool(frame["tenant"].isna().all())  # this layout has no tenants
    assert frame.loc[frame["path"] == DECODE, "name"].item() == "decode"


def test_cli_names_the_schema_and_keeps_to_a_tenant(
    falkordb_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from blarify_lab.cli import main

    name = f"cli_blarify_{uuid.uuid4().hex[:8]}"
    db = falkordb_server.manager(name)
    try:
        graph = load_blarify_fixture(db, "json", entity_id="user-a")
        load_blarify_fixture(db, "json", entity_id="user-b")
        uri = f"{falkordb_server.uri}/{name}"
        args = ["process", graph["root"], "--uri", uri, "--no-progress"]
        assert main(args) == 2  # two tenants, none chosen
        err = capsys.readouterr().err
        assert "schema blarify" in err and "user-a" in err and "user-b" in err
        assert main([*args, "--entity-id", "user-a"]) == 0
        out = capsys.readouterr()
        assert "database " in out.err and ", schema blarify, tenant entityId=user-a" in out.err
        assert out.out.startswith(graph["root"])
        assert len(_docs(db)) == 41
        export = ["export", graph["root"], "--out", str(tmp_path), "--uri", uri]
        assert main([*export, "--schema", "blarify", "--entity-id", "user-a"]) == 0
        assert (tmp_path / "decoder.py.md").is_file()
        assert main(["sessions", "list", "--uri", uri, "--entity-id", "user-a"]) == 0
        assert "no sessions" in capsys.readouterr().out
    finally:
        db.delete_graph()
        db.close()


def test_estimate_takes_a_schema_and_keeps_to_its_tenant(db_manager: GraphDB) -> None:
    graph = load_blarify_fixture(db_manager, "json", entity_id="user-a")
    load_blarify_fixture(db_manager, "json", entity_id="user-b")
    proc = _processor(db_manager, Recorder())
    with pytest.raises(bl.AmbiguousTenantError):
        proc.estimate(graph["root"])
    frame = proc.estimate(graph["root"], schema=bl.GraphSchema.blarify(entity_id="user-b"))
    assert int(frame["nodes"].iloc[0]) == 41 and int(frame["llm_calls"].iloc[0]) == 41
