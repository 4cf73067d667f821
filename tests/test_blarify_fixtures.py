"""The blarify fixtures: what blarify 1.3.9 built, loaded as its Neo4j and FalkorDB managers write."""

from __future__ import annotations

import pytest

from blarify_lab.db import GraphDB
from tests.blarify_graphs import (
    CHILD_TYPES,
    HIERARCHY_TYPES,
    LAYOUT_IDS,
    LAYOUTS,
    Layout,
    add_blarify_documentation,
    blarify_documentation_properties,
    blarify_reader,
    blarify_reader_rows,
    fixture,
    load_blarify_fixture,
)

pytestmark = pytest.mark.neo4j_integration

DECODE = "/blarify/repo/json/decoder.py#JSONDecoder.decode"


def test_json_fixture_is_what_blarify_built_of_stdlib_json() -> None:
    data = fixture("json")
    assert data["blarify_version"] == "1.3.9"
    kinds = sorted(n["label"] for n in data["nodes"])
    assert kinds.count("FOLDER") == 1
    assert kinds.count("FILE") == 6
    assert kinds.count("CLASS") == 3
    assert kinds.count("FUNCTION") == 31
    assert {e["type"] for e in data["edges"]} == set(HIERARCHY_TYPES)
    assert len(data["edges"]) == 40
    ids = [n["properties"]["node_id"] for n in data["nodes"]]
    paths = [n["properties"]["node_path"] for n in data["nodes"]]
    assert len(set(ids)) == len(ids) == len(set(paths)) == 41
    decode = next(n for n in data["nodes"] if n["properties"]["node_path"] == DECODE)
    assert decode["properties"]["path"] == "file:///blarify/repo/json/decoder.py"
    assert decode["properties"]["layer"] == "code"
    assert decode["properties"]["text"].startswith("def decode(self")


def test_calls_fixture_has_call_cycles() -> None:
    data = fixture("calls")
    by_id = {n["properties"]["node_id"]: n["properties"]["name"] for n in data["nodes"]}
    calls = {
        (by_id[e["source"]], by_id[e["target"]]) for e in data["edges"] if e["type"] == "CALLS"
    }
    assert ("is_even", "is_odd") in calls and ("is_odd", "is_even") in calls
    # describe -> Grid.balanced -> ... and Grid.label -> describe: a cross-module cycle
    assert ("describe", "balanced") in calls and ("label", "describe") in calls


def _counts(db: GraphDB, entity_id: str | None = None) -> tuple[int, int]:
    where = "WHERE n.entityId = $e" if entity_id else ""
    nodes = db.run_query(f"MATCH (n) {where} RETURN count(n) AS c", {"e": entity_id})
    edges = db.run_query(
        f"MATCH (n)-[r]->() {where} AND type(r) IN $types RETURN count(r) AS c"
        if entity_id
        else "MATCH ()-[r]->() WHERE type(r) IN $types RETURN count(r) AS c",
        {"e": entity_id, "types": list(HIERARCHY_TYPES)},
    )
    return int(nodes[0]["c"]), int(edges[0]["c"])


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_json_loads_in_both_layouts(db_manager: GraphDB, layout: Layout) -> None:
    loaded = load_blarify_fixture(db_manager, "json", layout=layout)
    assert (loaded["nodes"], loaded["edges"]) == (41, 40)
    assert _counts(db_manager) == (41, 40)
    rows = db_manager.run_query(
        "MATCH (n) WHERE n.node_path = $p RETURN labels(n) AS labels, n AS props", {"p": DECODE}
    )
    assert len(rows) == 1
    props = rows[0]["props"]
    assert props["label"] == "FUNCTION" and props["name"] == "decode"
    if layout == "neo4j":
        assert sorted(rows[0]["labels"]) == ["FUNCTION", "NODE"]
        assert (props["entityId"], props["repoId"], props["environment"]) == (
            "user-a",
            "json",
            "main",
        )
    else:
        assert rows[0]["labels"] == []
        assert "entityId" not in props and "repoId" not in props
    raw = db_manager.run_query(
        "MATCH (n) WHERE n.name = 'empty-env.json' RETURN labels(n) AS labels", {}
    )
    expected = ["FILE", "NODE", "RAW"] if layout == "neo4j" else ["label"]
    assert sorted(raw[0]["labels"]) == expected, "blarify's extra label, as each manager sets it"
    # the folder reaches every node through blarify's three hierarchy types
    reach = db_manager.run_query(
        "MATCH (f) WHERE f.node_path = $root "
        "MATCH (f)-[:CONTAINS|FUNCTION_DEFINITION|CLASS_DEFINITION*]->(n) "
        "RETURN count(DISTINCT n) AS c",
        {"root": loaded["root"]},
    )
    assert reach[0]["c"] == 40


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_two_tenants_share_node_ids(db_manager: GraphDB, layout: Layout) -> None:
    load_blarify_fixture(db_manager, "json", layout=layout, tenant_properties=True)
    load_blarify_fixture(
        db_manager,
        "json",
        layout=layout,
        entity_id="user-b",
        repo_id="json",
        tenant_properties=True,
    )
    assert _counts(db_manager, "user-a") == (41, 40)
    assert _counts(db_manager, "user-b") == (41, 40)
    shared = db_manager.run_query(
        "MATCH (n) WHERE n.node_path = $p RETURN collect(DISTINCT n.node_id) AS ids, count(n) AS c",
        {"p": DECODE},
    )
    assert shared[0]["c"] == 2 and len(shared[0]["ids"]) == 1
    # no edge crosses tenants
    crossing = db_manager.run_query(
        "MATCH (a)-[r]->(b) WHERE a.entityId <> b.entityId RETURN count(r) AS c", {}
    )
    assert crossing[0]["c"] == 0


def test_falkordb_layout_refuses_a_second_repository_in_one_graph(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json", layout="falkordb")
    with pytest.raises(ValueError, match="one repository per graph"):
        load_blarify_fixture(db_manager, "json", layout="falkordb", entity_id="user-b")


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_calls_loads_with_its_calls(db_manager: GraphDB, layout: Layout) -> None:
    loaded = load_blarify_fixture(db_manager, "calls", layout=layout, repo_id="calls")
    rows = db_manager.run_query("MATCH ()-[r:CALLS]->() RETURN count(r) AS c", {})
    assert rows[0]["c"] == loaded["edge_types"]["CALLS"] == 7


def test_documentation_helper_matches_what_blarify_made() -> None:
    """Our rule for a documentation node gives blarify's DocumentationNode, property by property."""
    made = fixture("documentation")
    code = {n["properties"]["node_id"]: n for n in fixture("json")["nodes"]}
    children = {
        n["properties"]["node_id"]: len(
            {
                e["target"]
                for e in fixture("json")["edges"]
                if e["source"] == n["properties"]["node_id"] and e["type"] in CHILD_TYPES
            }
        )
        for n in fixture("json")["nodes"]
    }
    assert len(made["nodes"]) == 2
    for doc in made["nodes"]:
        expected = doc["properties"]
        source = code[expected["source_node_id"]]
        ours = blarify_documentation_properties(
            source["properties"],
            [source["label"], "NODE"],
            expected["content"],
            children_count=children[expected["source_node_id"]],
        )
        assert ours == expected
    assert {(e["type"], e["properties"]["scopeText"]) for e in made["edges"]} == {
        ("DESCRIBES", "semantic_documentation")
    }


def test_blarify_reader_finds_documentation_written_as_blarify_does(db_manager: GraphDB) -> None:
    load_blarify_fixture(db_manager, "json", layout="neo4j")
    load_blarify_fixture(db_manager, "json", layout="neo4j", entity_id="user-b")
    node_id = fixture("json")["nodes"][0]["properties"]["node_id"]
    decode_id = next(
        n["properties"]["node_id"]
        for n in fixture("json")["nodes"]
        if n["properties"]["node_path"] == DECODE
    )
    assert blarify_reader(db_manager, decode_id, "user-a") is None
    props = add_blarify_documentation(db_manager, decode_id, "Decodes a JSON document.")
    assert props["info_type"] == "leaf_analysis"
    assert blarify_reader(db_manager, decode_id, "user-a") == "Decodes a JSON document."
    assert blarify_reader(db_manager, decode_id, "user-a", ["json"]) == "Decodes a JSON document."
    assert blarify_reader(db_manager, decode_id, "user-a", ["other"]) is None
    assert blarify_reader(db_manager, decode_id, "user-b") is None  # the other tenant's node
    # written again: updated in place (blarify's merge), not duplicated
    add_blarify_documentation(db_manager, decode_id, "Decodes one JSON document.")
    rows = blarify_reader_rows(db_manager, decode_id, "user-a")
    assert [r["content"] for r in rows] == ["Decodes one JSON document."]
    docs = db_manager.run_query(
        "MATCH (d:DOCUMENTATION)-[:DESCRIBES]->(c) WHERE c.node_id = $id "
        "RETURN d.entityId AS e, count(d) AS c",
        {"id": decode_id},
    )
    assert [(r["e"], r["c"]) for r in docs] == [("user-a", 1)]
    folder = add_blarify_documentation(db_manager, node_id, "The json package.")
    assert (folder["info_type"], folder["children_count"]) == ("parent_analysis", 6)
    assert blarify_reader(db_manager, node_id, "user-a") == "The json package."


def test_falkordb_layout_documentation_has_no_labels(db_manager: GraphDB) -> None:
    loaded = load_blarify_fixture(db_manager, "json", layout="falkordb")
    props = add_blarify_documentation(
        db_manager, loaded["node_ids"][DECODE], "text", layout="falkordb"
    )
    rows = db_manager.run_query(
        "MATCH (d)-[r:DESCRIBES]->(c) RETURN labels(d) AS l, d.content AS content, "
        "d.layer AS layer, c.node_id AS code, r.scopeText AS scope",
        {},
    )
    assert rows == [
        {
            "l": [],
            "content": "text",
            "layer": "documentation",
            "code": props["source_node_id"],
            "scope": "semantic_documentation",
        }
    ]
