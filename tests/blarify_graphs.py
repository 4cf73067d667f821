"""Graphs that blarify built, loaded the way blarify writes them (test support).

The fixtures in ``tests/blarify_fixtures/`` are what blarify 1.3.9's ``GraphBuilder`` handed its
database manager (``build_fixtures.py`` there rebuilds them). ``load_blarify_fixture`` writes one
into a graph as blarify's managers would:

- ``layout="neo4j"`` (blarify's ``Neo4jManager``): labels ``[KIND, NODE]``, every node gets
  ``repoId``, ``entityId`` and ``environment``; edges are created between nodes of the same tenant.
- ``layout="falkordb"`` (blarify's ``FalkorDBManager``): no kind labels (the kind is only in the
  ``label`` property; a node with extra labels gets the literal label ``label``, as blarify's
  query does) and no tenant properties (blarify keeps one repository per FalkorDB graph);
  ``tenant_properties=True`` adds them anyway, for label-less graphs with several tenants.

``add_blarify_documentation`` writes a ``DOCUMENTATION`` node as blarify's documentation workflow
does, and ``blarify_reader`` reads documentation back with blarify's own reader query (captured
from the installed package into ``reader_query.json`` by ``build_fixtures.py``).

Test-side Cypher: labels and relationship types are checked against ``_NAME`` before they are
interpolated; every value goes in parameters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any, Literal

from blarify_lab.db import GraphDB

FIXTURES = Path(__file__).resolve().parent / "blarify_fixtures"
Layout = Literal["neo4j", "falkordb"]
LAYOUTS: tuple[Layout, ...] = ("neo4j", "falkordb")
LAYOUT_IDS = ("neo4j-layout", "falkordb-layout")  # test ids: the backend comes first
HIERARCHY_TYPES = ("CONTAINS", "FUNCTION_DEFINITION", "CLASS_DEFINITION")
# blarify's documentation workflow describes a node from its hierarchy and CALLS children.
CHILD_TYPES = (*HIERARCHY_TYPES, "CALLS")
# GraphBuilder's default graph environment (``GraphEnvironment("blarify", "repo", root)``).
GRAPH_ENVIRONMENT = "/blarify/repo"
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@cache
def fixture(name: str) -> dict[str, Any]:
    """A committed fixture (``json``, ``calls``, ``documentation``, ``reader_query``) as data."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a blarify label or relationship type: {name!r}")
    return name


def _tenant(entity_id: str, repo_id: str, environment: str) -> dict[str, str]:
    return {"entityId": entity_id, "repoId": repo_id, "environment": environment}


def _node_pattern(var: str, layout: Layout, tenant: bool) -> str:
    label = ":NODE" if layout == "neo4j" else ""
    where = (
        "{node_id: $id_key, repoId: $repoId, entityId: $entityId, environment: $environment}"
        if tenant
        else "{node_id: $id_key}"
    )
    return f"({var}{label} {where})"


def load_blarify_fixture(
    db: GraphDB,
    name: str,
    *,
    layout: Layout = "neo4j",
    entity_id: str = "user-a",
    repo_id: str = "json",
    environment: str = "main",
    tenant_properties: bool | None = None,
) -> dict[str, Any]:
    """Write fixture ``name`` into ``db`` the way blarify's ``layout`` manager writes a graph.

    Loading it again with another ``entity_id``/``repo_id`` adds a second tenant whose nodes
    share the first one's ``node_id``s (as in blarify's databases). ``tenant_properties``
    defaults to what blarify's manager does (Neo4j: yes; FalkorDB: no). Returns what was
    written: ``nodes``, ``edges`` (counts), ``kinds`` and ``edge_types`` (counts by name),
    ``node_ids`` (``node_path`` -> ``node_id``), ``root`` (the folder's ``node_path``) and the
    tenant.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    tenant = layout == "neo4j" if tenant_properties is None else tenant_properties
    data = fixture(name)
    tenant_props = _tenant(entity_id, repo_id, environment) if tenant else {}
    if layout == "falkordb" and not tenant:
        existing = db.run_query(
            "MATCH (n) WHERE n.node_id IN $ids RETURN count(n) AS c",
            {"ids": [n["properties"]["node_id"] for n in data["nodes"]]},
        )
        if existing[0]["c"]:
            raise ValueError(
                "blarify's FalkorDB layout keeps one repository per graph: load into another "
                "graph, or pass tenant_properties=True"
            )

    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for node in data["nodes"]:
        if layout == "neo4j":
            labels = (*node.get("extra_labels", []), node["label"], "NODE")
        else:
            # blarify's FalkorDB manager sets no kind label, but its ``SET n:label`` (meant to
            # set each extra label) sets the literal label ``label`` on a node with extra
            # labels (``empty-env.json``, extra label ``RAW``): checked by running its query.
            labels = ("label",) if node.get("extra_labels") else ()
        groups.setdefault(labels, []).append({**node["properties"], **tenant_props})
    for labels, rows in groups.items():
        label_text = "".join(f":{_checked(lab) if lab != 'label' else 'label'}" for lab in labels)
        db.run_query(f"UNWIND $rows AS row CREATE (n{label_text}) SET n = row", {"rows": rows})

    by_type: dict[str, list[dict[str, Any]]] = {}
    for edge in data["edges"]:
        props = dict(edge["properties"])
        if layout == "falkordb":
            # blarify's FalkorDB manager keeps scopeText (always), startLine, referenceCharacter.
            keep = ("scopeText", "startLine", "referenceCharacter")
            props = {k: v for k, v in props.items() if k in keep}
            props.setdefault("scopeText", "")
        row = {"source": edge["source"], "target": edge["target"], "props": props}
        by_type.setdefault(edge["type"], []).append(row)
    for rel_type, rows in by_type.items():
        src = _node_pattern("a", layout, tenant).replace("$id_key", "row.source")
        dst = _node_pattern("b", layout, tenant).replace("$id_key", "row.target")
        db.run_query(
            f"UNWIND $rows AS row MATCH {src} MATCH {dst} "
            f"CREATE (a)-[r:{_checked(rel_type)}]->(b) SET r = row.props",
            {"rows": rows, **tenant_props},
        )

    node_ids = {n["properties"]["node_path"]: n["properties"]["node_id"] for n in data["nodes"]}
    folders = sorted(n["properties"]["node_path"] for n in data["nodes"] if n["label"] == "FOLDER")
    return {
        "name": name,
        "layout": layout,
        "entity_id": entity_id,
        "repo_id": repo_id,
        "environment": environment,
        "tenant_properties": tenant,
        "nodes": len(data["nodes"]),
        "edges": len(data["edges"]),
        "kinds": dict(Counter(n["label"] for n in data["nodes"])),
        "edge_types": dict(Counter(e["type"] for e in data["edges"])),
        "node_ids": node_ids,
        "root": folders[0],
    }


def blarify_documentation_properties(
    code: dict[str, Any],
    code_labels: list[str],
    content: str,
    *,
    children_count: int,
    graph_environment: str = GRAPH_ENVIRONMENT,
) -> dict[str, Any]:
    """The properties blarify's bottom-up workflow gives the documentation of ``code``.

    ``code`` is the code node's properties, ``code_labels`` its ``labels(n)`` (blarify's
    ``source_labels``). A node with hierarchy or CALLS children gets a ``parent_analysis`` with
    ``children_count``, a leaf a ``leaf_analysis`` (blarify's ``DocumentationNode`` rules; the
    result is checked against the ones blarify made in ``documentation.json``).
    """
    source_id = code["node_id"]
    node_path = f"{graph_environment}{source_id}@info"
    doc_id = hashlib.md5(node_path.encode()).hexdigest()
    props: dict[str, Any] = {
        "label": "DOCUMENTATION",
        "path": code["path"],
        "node_id": doc_id,
        "node_path": node_path,
        "name": f"{source_id}@info",
        "level": 0,
        "hashed_id": doc_id,
        "diff_identifier": graph_environment.rsplit("/", 1)[-1],
        "layer": "documentation",
        "content": content,
        "info_type": "parent_analysis" if children_count else "leaf_analysis",
        "source_type": "code",
        "source_path": code["path"],
        "source_labels": list(code_labels),
        "source_node_id": source_id,
    }
    if children_count:
        props["children_count"] = children_count
    return props


def _code_node(
    db: GraphDB, node_id: str, tenant: dict[str, str]
) -> tuple[dict[str, Any], list[str], int]:
    where = " AND ".join(f"c.{k} = ${k}" for k in tenant)
    rows = db.run_query(
        "MATCH (c) WHERE c.node_id = $node_id AND c.layer = 'code'"
        + (f" AND {where}" if where else "")
        + " OPTIONAL MATCH (c)-[h]->(child) WHERE type(h) IN $hierarchy"
        " RETURN c AS code, labels(c) AS labels, count(DISTINCT child) AS children",
        {"node_id": node_id, "hierarchy": list(CHILD_TYPES), **tenant},
    )
    if len(rows) != 1:
        raise ValueError(f"{len(rows)} code nodes with node_id {node_id!r} in tenant {tenant}")
    return rows[0]["code"], list(rows[0]["labels"]), int(rows[0]["children"])


def add_blarify_documentation(
    db: GraphDB,
    node_id: str,
    content: str,
    *,
    entity_id: str = "user-a",
    repo_id: str = "json",
    layout: Layout = "neo4j",
    environment: str = "main",
    tenant_properties: bool | None = None,
) -> dict[str, Any]:
    """Write the ``DOCUMENTATION`` node blarify's workflow writes for code node ``node_id``.

    ``(doc)-[:DESCRIBES {scopeText: 'semantic_documentation'}]->(code)``. Neo4j layout: labels
    ``[DOCUMENTATION, NODE]`` and the tenant properties, merged on blarify's merge keys (writing
    it again updates it, as ``apoc.merge.node`` does). FalkorDB layout: no labels, created anew
    every time (as blarify's FalkorDB manager does). Returns the node's properties.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    tenant = layout == "neo4j" if tenant_properties is None else tenant_properties
    tenant_props = _tenant(entity_id, repo_id, environment) if tenant else {}
    code, labels, children = _code_node(db, node_id, tenant_props)
    props = {
        **blarify_documentation_properties(code, labels, content, children_count=children),
        **tenant_props,
    }
    code_match = "MATCH (c) WHERE c.node_id = $code_id AND c.layer = 'code'" + "".join(
        f" AND c.{k} = ${k}" for k in tenant_props
    )
    params = {"props": props, "code_id": node_id, **tenant_props}
    if layout == "neo4j":
        db.run_query(
            "MERGE (d:DOCUMENTATION:NODE {hashed_id: $props.hashed_id, repoId: $repoId, "
            "entityId: $entityId, environment: $environment, "
            "diff_identifier: $props.diff_identifier}) SET d += $props "
            f"WITH d {code_match} "
            "MERGE (d)-[r:DESCRIBES]->(c) SET r.scopeText = 'semantic_documentation'",
            params,
        )
    else:
        db.run_query(
            f"{code_match} CREATE (d) SET d = $props "
            "CREATE (d)-[:DESCRIBES {scopeText: 'semantic_documentation'}]->(c)",
            params,
        )
    return props


def reader_query() -> str:
    """blarify 1.3.9's ``get_existing_documentation_for_node_query``, as the package returns it.

    Captured from the installed package by ``build_fixtures.py`` rather than retyped, so that
    the tests prove blarify's own reader finds what we write.
    """
    return str(fixture("reader_query")["query"])


def blarify_reader_rows(
    db: GraphDB, node_id: str, entity_id: str, repo_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """The rows blarify's reader returns for code node ``node_id`` of ``entity_id``."""
    params = {"node_id": node_id, "entity_id": entity_id, "repo_ids": repo_ids}
    return db.run_query(reader_query(), params)


def blarify_reader(
    db: GraphDB, node_id: str, entity_id: str, repo_ids: list[str] | None = None
) -> str | None:
    """The documentation text blarify's reader finds for ``node_id`` (``doc.content``), or None."""
    rows = blarify_reader_rows(db, node_id, entity_id, repo_ids)
    return rows[0]["content"] if rows else None
