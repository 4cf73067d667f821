"""Read-only queries: what an estimate, an export and ``documentation()`` read of a graph.

Built here, beside ``queries`` (the sessions' own queries), in the same subset of Cypher and
linted the same way by ``tests/test_cypher_lint.py``. Names spliced in come from a validated
``GraphSchema``; values (tenants included) are parameters.
"""

from __future__ import annotations

from .doc_queries import doc_lookup, prompt_columns
from .names import DESCRIBES, DOCUMENTATION_LABEL
from .queries import DEFAULT_SCHEMA, status_property, validate_relationship_types
from .schema import GraphSchema

__all__ = [
    "children_query",
    "code_node_counts_query",
    "documentation_query",
    "graph_contents_query",
    "graph_structure_query",
    "nodes_contents_query",
    "scope_text_sizes_query",
]


def graph_contents_query(schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """Read only: every code node of the graph (of the tenant) with what its prompt needs and
    its stored documentation (for an estimate before paying)."""
    return (
        f"MATCH (n) WHERE {schema.code_filter('n')} " + doc_lookup(schema) + prompt_columns(schema)
    )


def code_node_counts_query(schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """Read only: how many code nodes the graph (the tenant) has (``nodes``), and how many of
    them have stored documentation (``documented``); nothing else is read."""
    return (
        f"MATCH (n) WHERE {schema.code_filter('n')} "
        + doc_lookup(schema)
        + "RETURN count(n) AS nodes, count(d) AS documented"
    )


def nodes_contents_query(schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """Read only: the code nodes with ids ``$node_ids``, as ``graph_contents_query``."""
    return (
        "UNWIND $node_ids AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND {schema.code_filter('n', with_tenant=False)} "
        + doc_lookup(schema)
        + prompt_columns(schema)
    )


def graph_structure_query(
    relationship_type: str = "CONTAINS", schema: GraphSchema = DEFAULT_SCHEMA
) -> str:
    """Read only: every ``relationship_type`` edge between code nodes, one row per parent."""
    rel = validate_relationship_types(relationship_type)
    return (
        f"MATCH (a)-[:{rel}]->(b) WHERE {schema.code_filter('a')} AND {schema.code_filter('b')} "
        "RETURN id(a) AS parent, collect(id(b)) AS children"
    )


def children_query(
    relationship_type: str = "CONTAINS", schema: GraphSchema = DEFAULT_SCHEMA
) -> str:
    """Read only: the ``relationship_type`` children of the nodes ``$frontier``, one row per
    parent (a would-be ``"subtree"`` scope is read level by level)."""
    rel = validate_relationship_types(relationship_type)
    return (
        "UNWIND $frontier AS node_id MATCH (a) WHERE id(a) = node_id WITH a "  # a seek, no scan
        f"MATCH (a)-[:{rel}]->(b) WHERE {schema.code_filter('b')} "
        "RETURN id(a) AS parent, collect(id(b)) AS children"
    )


def documentation_query(schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """The stored documentation of the code node named ``$root_path`` and of every code node
    whose identity lies under it (``$folder_prefix`` is ``$root_path + '/'``, ``$file_prefix``
    ``$root_path`` and the schema's first definition separator, ``$file_prefix_<k>`` the
    others), of the tenant, with what an export and ``documentation()`` need (``tenant``: the
    node's tenant values in schema order; ``location``: what a file shares with its
    definitions, where the schema has such a property)."""
    ident = schema.identity("n")
    tenant = ", ".join(f"n.{prop}" for prop, _ in schema.tenant)
    more = "".join(
        f" OR {ident} STARTS WITH $file_prefix_{k}"
        for k in range(1, len(schema.definition_separators))
    )
    location = f"n.{schema.file_property or schema.identity_property}"
    return (
        f"MATCH (d:{DOCUMENTATION_LABEL})-[:{DESCRIBES}]->(n) "
        f"WHERE ({schema.named('n', 'root_path')} OR {ident} STARTS WITH $folder_prefix "
        f"OR {ident} STARTS WITH $file_prefix{more}) AND {schema.code_filter('n')} "
        f"RETURN {ident} AS path, {schema.own_key('n')} AS key, {schema.kinds('n')} AS labels, "
        f"n.name AS name, [{tenant}] AS tenant, {location} AS location, "
        "n.start_line AS start_line, "
        f"{schema.doc_text('d')} AS description, d.model AS model, d.truncated AS truncated, "
        "d.ungrounded AS ungrounded, d.grounded_ratio AS grounded_ratio, "
        "d.session_id AS session_id, d.updated_at AS updated_at, d.doc_key AS doc_key "
        "ORDER BY path"
    )


def scope_text_sizes_query(session_id: str) -> str:
    """Read only: the length of every session node's source text (0 when it has none), for
    weighing nodes by their predicted call time."""
    prop = status_property(session_id)
    return (
        f"MATCH (n) WHERE n.{prop} IS NOT NULL "
        "RETURN collect(id(n)) AS node_ids, collect(size(coalesce(n.text, ''))) AS chars"
    )
