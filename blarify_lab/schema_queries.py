"""The Cypher that finds out a graph's schema and carries stored documentation over to it.

Built here, beside ``queries`` (the session's own queries), and linted the same way by
``tests/test_cypher_lint.py``. Names spliced in come from a validated ``GraphSchema``;
values are parameters.
"""

from __future__ import annotations

from .names import DESCRIBES, DOCUMENTATION_LABEL
from .schema import BLARIFY_HIERARCHY, GraphSchema

__all__ = [
    "adopt_documentation_query",
    "documentation_to_adopt_query",
    "drop_legacy_constraint_query",
    "find_root_any_schema_query",
    "has_blarify_hierarchy_query",
    "has_code_nodes_query",
    "taken_documentation_keys_query",
    "tenants_query",
]


def _blarify_types() -> str:
    """``theirs``: the graph knows blarify's own hierarchy types (from the database's list of
    relationship types: no scan)."""
    own = " OR ".join(f"'{t}' IN types" for t in BLARIFY_HIERARCHY if t != "CONTAINS")
    return (
        "CALL db.relationshipTypes() YIELD relationshipType "
        f"WITH collect(relationshipType) AS types WITH {own} AS theirs "
    )


def has_blarify_hierarchy_query() -> str:
    """``theirs``: whether the graph has blarify's own hierarchy relationship types."""
    return _blarify_types() + "RETURN theirs"


def has_code_nodes_query(schema: GraphSchema) -> str:
    """One row when some node is a code node of ``schema`` (any tenant): for blarify's, a
    ``node_path`` on a node of ``layer = 'code'`` (our documentation's ``node_path`` is not)."""
    return f"MATCH (n) WHERE {schema.code_filter('n', with_tenant=False)} RETURN 1 AS found LIMIT 1"


def find_root_any_schema_query() -> str:
    """The code nodes named ``$node_path`` in the graph's schema (a ``path`` of ours; in a graph
    with blarify's hierarchy types, blarify's ``node_path``, ``node_id`` or ``path``), at most
    11, with whether the graph is blarify's: how a session whose schema was not given finds
    its root and the graph's schema in one read."""
    ours, blarify = GraphSchema(), GraphSchema.blarify()
    return (
        _blarify_types()
        + f"MATCH (n) WHERE (NOT theirs AND n.path = $node_path AND {ours.code_filter('n')}) "
        f"OR (theirs AND {blarify.named('n', 'node_path')} "
        f"AND {blarify.code_filter('n', with_tenant=False)}) "
        "RETURN id(n) AS node_id, coalesce(n.node_path, n.path) AS path, "
        "theirs AS blarify ORDER BY node_id LIMIT 11"
    )


def tenants_query(schema: GraphSchema) -> str:
    """The distinct tenants among the schema's code nodes (those chosen so far), as lists of
    the tenant properties' values in schema order."""
    values = ", ".join(f"n.{prop}" for prop, _ in schema.tenant)
    return f"MATCH (n) WHERE {schema.code_filter('n')} RETURN DISTINCT [{values}] AS tenant"


def documentation_to_adopt_query(schema: GraphSchema) -> str:
    """Documentation nodes that describe a code node of the tenant but have no ``doc_key``:
    ours from before stable keys (keyed by an internal id), or blarify's own. At most
    ``$limit`` (repeat until none are left)."""
    start = (  # blarify's FalkorDB layout labels nothing: its documentation too
        f"MATCH (d) WHERE (d:{DOCUMENTATION_LABEL} OR d.layer = 'documentation') "
        if schema.documentation_layout == "blarify"
        else f"MATCH (d:{DOCUMENTATION_LABEL}) WHERE "
    )
    joiner = "AND " if schema.documentation_layout == "blarify" else ""
    return (
        f"{start}{joiner}d.doc_key IS NULL "
        f"MATCH (d)-[:{DESCRIBES}]->(n) WHERE {schema.code_filter('n')} "
        f"RETURN id(d) AS doc, {schema.key('n')} AS key, d.input_hash IS NOT NULL AS ours "
        "LIMIT $limit"
    )


def taken_documentation_keys_query() -> str:
    """Which of ``$keys`` a documentation node already holds."""
    return (
        f"UNWIND $keys AS key MATCH (d:{DOCUMENTATION_LABEL} {{doc_key: key}}) RETURN DISTINCT key"
    )


def adopt_documentation_query(schema: GraphSchema) -> str:
    """Give each documentation node ``$rows[k].doc`` (an internal id) the key ``$rows[k].key``
    and the ``DOCUMENTATION`` label; ours lose the internal id they were keyed by."""
    legacy = " REMOVE d.node_id" if schema.documentation_layout == "default" else ""
    return (
        "UNWIND $rows AS row MATCH (d) WHERE id(d) = row.doc "
        f"SET d:{DOCUMENTATION_LABEL}, d.doc_key = row.key{legacy} "
        "RETURN count(d) AS adopted"
    )


def drop_legacy_constraint_query() -> str:
    """Neo4j: drop the constraint that keyed documentation by internal id (``node_id``),
    which blarify's own documentation nodes (one ``node_id`` in several tenants) break."""
    return "DROP CONSTRAINT blarify_documentation_node IF EXISTS"
