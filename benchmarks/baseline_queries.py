"""Query builders only the benchmarks' baseline (and the tests that probe the graph) use.

The baseline processor of ``benchmarks/run.py`` claims ready nodes with one graph scan per
batch, as peers do; the library itself never does. Linted against Neo4j like the library's
queries (``tests/test_cypher_lint.py``).
"""

from __future__ import annotations

from blarify_lab.queries import FINISHED_STATUSES, status_property, validate_identifier

__all__ = [
    "get_processable_nodes_query",
    "mark_processing_status_batch_query",
    "mark_processing_status_query",
    "session_status_counts_query",
]


def mark_processing_status_query(session_id: str) -> str:
    """Set the status of the session's node at ``$node_path`` to ``$status``."""
    prop = status_property(session_id)
    return (
        f"MATCH (n) WHERE n.path = $node_path AND n.{prop} IS NOT NULL "
        f"SET n.{prop} = $status "
        "RETURN count(n) AS updated"
    )


def mark_processing_status_batch_query(session_id: str) -> str:
    """Set the status of the session's nodes at ``$node_paths`` (a list) to ``$status``."""
    prop = status_property(session_id)
    return (
        "UNWIND $node_paths AS node_path "
        f"MATCH (n) WHERE n.path = node_path AND n.{prop} IS NOT NULL "
        f"SET n.{prop} = $status "
        "RETURN count(n) AS updated"
    )


def get_processable_nodes_query(session_id: str, relationship_type: str = "CONTAINS") -> str:
    """Claim up to ``$batch_size`` pending nodes whose children are all finished (leaves first).

    A child counts when it belongs to the session; claimed nodes move to ``in_progress`` in the
    same statement, so a node is handed out once.
    """
    prop = status_property(session_id)
    rel = validate_identifier(relationship_type, "relationship type")
    finished = ", ".join(f"'{s}'" for s in FINISHED_STATUSES)
    return (
        f"MATCH (n) WHERE n.{prop} = 'pending' "
        f"OPTIONAL MATCH (n)-[:{rel}]->(c) WHERE c.{prop} IS NOT NULL "
        f"WITH n, count(CASE WHEN c.{prop} IN [{finished}] THEN NULL ELSE c END) AS unfinished "
        "WHERE unfinished = 0 "
        "WITH n ORDER BY n.path LIMIT $batch_size "
        f"SET n.{prop} = 'in_progress' "
        "RETURN n.path AS path, n.path AS node_path, labels(n) AS labels, id(n) AS node_id"
    )


def session_status_counts_query(session_id: str) -> str:
    """How many of the session's nodes are in each status."""
    prop = status_property(session_id)
    return f"MATCH (n) WHERE n.{prop} IS NOT NULL RETURN n.{prop} AS status, count(n) AS count"
