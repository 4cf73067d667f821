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


def has_blarify_hierarchy_query() -> str:
    """One row when the graph has an edge of blarify's own hierarchy types (a lookup by
    relationship type, no node scan)."""
    own = "|".join(t for t in BLARIFY_HIERARCHY if t != "CONTAINS")
    return f"MATCH ()-[r:{own}]->() RETURN 1 AS found LIMIT 1"


def has_code_nodes_query(schema: GraphSchema) -> str:
    """One row when some node is a code node of ``schema`` (any tenant): for blarify's, a
    ``node_path`` on a node of ``layer = 'code'`` (our documentation's ``node_path`` is not)."""
    return f"MATCH (n) WHERE {schema.code_filter('n', with_tenant=False)} RETURN 1 AS found LIMIT 1"


def find_root_any_schema_query() -> str:
    """The code nodes named ``$node_path`` in either schema (a ``path`` of ours, or blarify's
    ``node_path`` / ``node_id``), at most 11, each with whether it is blarify's: how a session
    whose schema was not given finds its root and the graph's schema in one read."""
    ours, theirs = GraphSchema(), GraphSchema.blarify()
    return (
        f"MATCH (n) WHERE (n.path = $node_path AND n.node_path IS NULL "
        f"AND {ours.code_filter('n')}) OR ((n.node_path = $node_path OR n.node_id = $node_path "
        "OR n.path = $node_path) "
        f"AND {theirs.code_filter('n', with_tenant=False)}) "
        "RETURN id(n) AS node_id, coalesce(n.node_path, n.path) AS path, "
        "n.node_path IS NOT NULL AS blarify ORDER BY node_id LIMIT 11"
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
    return (
        f"MATCH (d)-[:{DESCRIBES}]->(n) WHERE d.doc_key IS NULL "
        f"AND (d:{DOCUMENTATION_LABEL} OR d.layer = 'documentation') "
        f"AND {schema.code_filter('n')} "
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
