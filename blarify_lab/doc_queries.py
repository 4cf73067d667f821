"""The Cypher fragments shared by the queries that read code nodes with their documentation:
find a node's documentation by its stable key, and return what a prompt needs. Built here, with
the other query modules (``queries``, ``read_queries``), and linted through them."""

from __future__ import annotations

from .names import DESCRIBES, DOCUMENTATION_LABEL, validate_identifier
from .schema import GraphSchema

__all__ = ["doc_lookup", "prompt_columns"]


def doc_lookup(schema: GraphSchema, carry: str = "") -> str:
    """Find code node ``n``'s documentation ``d`` by ``n``'s stable key (an index lookup), and
    ``link``, the edge by which ``d`` describes ``n`` (none yet on a rebuilt graph); ``carry``:
    another variable kept along."""
    kept = f"{validate_identifier(carry, 'variable')}, " if carry else ""
    return (
        f"WITH n, {kept}{schema.key('n')} AS doc_key "
        f"OPTIONAL MATCH (d:{DOCUMENTATION_LABEL} {{doc_key: doc_key}}) "
        f"OPTIONAL MATCH (d)-[link:{DESCRIBES}]->(n) "
    )


def prompt_columns(schema: GraphSchema) -> str:
    """What a prompt needs of ``n`` and its stored documentation ``d`` (null when none;
    ``doc_linked`` false when ``d`` does not describe ``n`` yet)."""
    return (
        f"RETURN id(n) AS node_id, {schema.kinds('n')} AS labels, "
        f"{schema.identity('n')} AS path, n.name AS name, n.text AS text, "
        f"d.input_hash AS doc_hash, {schema.doc_text('d')} AS doc_description, "
        "d.truncated AS doc_truncated, link IS NOT NULL AS doc_linked"
    )
