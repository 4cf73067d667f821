"""Every Cypher query blarify_lab sends, built in one place.

The queries are written in the subset that both Neo4j 5 and FalkorDB understand (no ``EXISTS {}``
subqueries, no pattern comprehensions, no ``datetime()``, no ``SET n[$key]``), and every builder
is fed to Neo4j's own Cypher front end by ``tests/test_cypher_lint.py``.

Only three kinds of things are ever interpolated into query text, each validated first: a
session id (32 lowercase hex characters), a relationship type and a label (ASCII identifiers).
Every value travels as a parameter.
"""

from __future__ import annotations

import re
from typing import Any, Literal

__all__ = [
    "DOCUMENTATION_LABEL",
    "NODE_STATUSES",
    "SESSION_LABEL",
    "STATUS_PREFIX",
    "Scope",
    "status_property",
    "validate_identifier",
    "validate_session_id",
]

STATUS_PREFIX = "processing_status_"
SESSION_LABEL = "BLARIFY_SESSION"
DOCUMENTATION_LABEL = "DOCUMENTATION"
DESCRIBES = "DESCRIBES"
NODE_STATUSES = ("pending", "in_progress", "completed", "failed")
FINISHED_STATUSES = ("completed", "failed")
Scope = Literal["graph", "subtree"]

_SESSION_ID = re.compile(r"[0-9a-f]{32}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is 32 lowercase hex characters (``uuid4().hex``), else raise.

    The id becomes part of a property name, so this is the guard against Cypher injection.
    """
    if not isinstance(session_id, str) or _SESSION_ID.fullmatch(session_id) is None:
        raise ValueError(
            f"invalid session id {session_id!r}: a session id is 32 lowercase hex characters "
            "(uuid.uuid4().hex); list the real ones with blarify_lab.list_sessions(db)"
        )
    return session_id


def validate_identifier(name: object, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain ASCII identifier (label or relationship type), else raise."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(
            f"invalid {what} {name!r}: use letters, digits and underscores only "
            "(at most 64, not starting with a digit)"
        )
    return name


def status_property(session_id: str) -> str:
    """The node property that holds one session's processing status."""
    return STATUS_PREFIX + validate_session_id(session_id)


def _in_scope(var: str) -> str:
    """The filter that keeps session registry and documentation nodes out of every scope."""
    return (
        f"{var}.path IS NOT NULL AND NOT {var}:{SESSION_LABEL} AND NOT {var}:{DOCUMENTATION_LABEL}"
    )


# ------------------------------------------------------------------------------ node lookups


def find_node_query() -> str:
    """Nodes (at most two, to detect ambiguity) whose ``path`` is ``$node_path``."""
    return (
        f"MATCH (n) WHERE n.path = $node_path AND {_in_scope('n')} "
        "RETURN id(n) AS node_id, labels(n) AS labels ORDER BY node_id LIMIT 2"
    )


def node_content_query() -> str:
    """What a prompt needs of the node at ``$node_path`` (for documenting it outside a session)."""
    return (
        f"MATCH (n) WHERE n.path = $node_path AND {_in_scope('n')} "
        "RETURN id(n) AS node_id, labels(n) AS labels, n.name AS name, n.text AS text "
        "ORDER BY node_id LIMIT 1"
    )


# ------------------------------------------------------------------- per-session node state


def initialize_processing_session_query(
    session_id: str, *, scope: Scope = "graph", relationship_type: str = "CONTAINS"
) -> str:
    """Mark every node of the session's scope ``pending``; returns their ``count``.

    ``scope="graph"``: every code node. ``scope="subtree"``: the nodes reachable from
    ``$root_path`` through ``relationship_type`` (the root included).
    """
    prop = status_property(session_id)
    if scope == "graph":
        match = f"MATCH (n) WHERE {_in_scope('n')}"
    elif scope == "subtree":
        rel = validate_identifier(relationship_type, "relationship type")
        match = (
            f"MATCH (root) WHERE root.path = $root_path AND {_in_scope('root')} "
            f"MATCH (root)-[:{rel}*0..]->(n) WHERE {_in_scope('n')} "
            "WITH DISTINCT n"
        )
    else:
        raise ValueError(f"invalid scope {scope!r}: use 'graph' or 'subtree'")
    return f"{match} SET n.{prop} = 'pending' RETURN count(n) AS count"


def scope_edges_query(session_id: str, relationship_type: str = "CONTAINS") -> str:
    """The ``relationship_type`` edges inside the session: one row per parent with its children.

    Grouped per parent because the client's cost is per value returned.
    """
    prop = status_property(session_id)
    rel = validate_identifier(relationship_type, "relationship type")
    return (
        f"MATCH (a)-[:{rel}]->(b) WHERE a.{prop} IS NOT NULL AND b.{prop} IS NOT NULL "
        "RETURN id(a) AS parent, collect(id(b)) AS children"
    )


def scope_node_ids_query(session_id: str) -> str:
    """The internal ids of every node of the session."""
    prop = status_property(session_id)
    return f"MATCH (n) WHERE n.{prop} IS NOT NULL RETURN collect(id(n)) AS node_ids"


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


def mark_status_by_ids_query(session_id: str) -> str:
    """Set the status of the session's nodes with internal ids ``$node_ids`` to ``$status``.

    The processor's batched write: an id lookup per row, no scan.
    """
    prop = status_property(session_id)
    return (
        "UNWIND $node_ids AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} IS NOT NULL "
        f"SET n.{prop} = $status "
        "RETURN count(n) AS updated"
    )


def advance_session_query(session_id: str) -> str:
    """The scheduler's one round trip: finish ``$completed`` and ``$failed``, claim ``$claim``.

    Lists of internal ids (each found by id, no scan). Claimed nodes move from ``pending`` to
    ``in_progress`` and come back with what a prompt needs.
    """
    prop = status_property(session_id)
    return (
        "UNWIND $completed AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} IS NOT NULL SET n.{prop} = 'completed' "
        "WITH count(*) AS finished "
        "UNWIND $failed AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} IS NOT NULL SET n.{prop} = 'failed' "
        "WITH count(*) AS finished "
        "UNWIND $claim AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} = 'pending' "
        f"SET n.{prop} = 'in_progress' "
        "RETURN id(n) AS node_id, labels(n) AS labels, n.path AS path, n.name AS name, "
        "n.text AS text"
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


def cleanup_session_query(session_id: str, *, batched: bool = False) -> str:
    """Remove the session's status property from its nodes, and nothing else.

    ``batched=True`` removes at most ``$batch_size`` per call (repeat until ``removed`` is 0),
    so that a big graph is never cleaned in one huge transaction.
    """
    prop = status_property(session_id)
    limit = "WITH n LIMIT $batch_size " if batched else ""
    return f"MATCH (n) WHERE n.{prop} IS NOT NULL {limit}REMOVE n.{prop} RETURN count(n) AS removed"


def save_documentation_query() -> str:
    """Write each ``$texts[k]`` to a DOCUMENTATION node that DESCRIBES the node ``$node_ids[k]``.

    Idempotent: a second run updates the same documentation node.
    """
    return (
        "UNWIND range(0, size($node_ids) - 1) AS k "
        "WITH $node_ids[k] AS node_id, $texts[k] AS text "
        f"MATCH (n) WHERE id(n) = node_id AND {_in_scope('n')} "
        f"MERGE (d:{DOCUMENTATION_LABEL})-[:{DESCRIBES}]->(n) "
        "SET d.content = text, d.node_path = n.path, d.updated_at = timestamp(), "
        "d.session_id = $session_id "
        "RETURN count(d) AS saved"
    )


# ------------------------------------------------------------------------- session registry


def register_session_query() -> str:
    """Create the registry node of a running session."""
    return (
        f"CREATE (s:{SESSION_LABEL} {{session_id: $session_id, root_path: $root_path, "
        "scope: $scope, relationship_type: $relationship_type, host: $host, pid: $pid, "
        "timeout_s: $timeout_s, heartbeat_interval_s: $heartbeat_interval_s, "
        "started_at: timestamp(), heartbeat_at: timestamp(), state: 'running'}) "
        "RETURN s.started_at AS started_at"
    )


def heartbeat_query() -> str:
    """Refresh a running session's heartbeat (and its progress counters)."""
    return (
        f"MATCH (s:{SESSION_LABEL}) WHERE s.session_id = $session_id "
        "SET s.heartbeat_at = timestamp(), s.completed = $completed, s.failed = $failed, "
        "s.total = $total "
        "RETURN s.heartbeat_at AS heartbeat_at"
    )


def delete_session_registry_query() -> str:
    """Delete a session's registry node."""
    return (
        f"MATCH (s:{SESSION_LABEL}) WHERE s.session_id = $session_id "
        "DELETE s RETURN count(*) AS deleted"
    )


def list_registered_sessions_query() -> str:
    """Every registry node, with the database's clock for heartbeat ages."""
    return (
        f"MATCH (s:{SESSION_LABEL}) RETURN s AS session, timestamp() AS now ORDER BY s.started_at"
    )


def list_status_keys_query() -> str:
    """Every ``processing_status_*`` key in the graph, with node counts per status."""
    return (
        "MATCH (n) UNWIND keys(n) AS key "
        f"WITH n, key WHERE key STARTS WITH '{STATUS_PREFIX}' "
        "RETURN key, n[key] AS status, count(*) AS count"
    )


def database_time_query() -> str:
    """The database's clock, in milliseconds since the epoch."""
    return "RETURN timestamp() AS now"


# -------------------------------------------------------------------------- code graph loading


def create_nodes_query(label: str) -> str:
    """Create one ``label`` node per map in ``$rows``; returns their ids in order."""
    lab = validate_identifier(label, "label")
    return (
        f"UNWIND $rows AS row CREATE (n:{lab}) SET n += row RETURN id(n) AS node_id, n.path AS path"
    )


def create_edges_query(relationship_type: str) -> str:
    """Create a ``relationship_type`` edge from each ``$sources[k]`` to ``$targets[k]`` (ids)."""
    rel = validate_identifier(relationship_type, "relationship type")
    return (
        "UNWIND range(0, size($sources) - 1) AS k "
        "WITH $sources[k] AS source, $targets[k] AS target "
        "MATCH (a) WHERE id(a) = source "
        "WITH a, target MATCH (b) WHERE id(b) = target "
        f"CREATE (a)-[:{rel}]->(b) "
        "RETURN count(*) AS created"
    )


def code_nodes_under_root_query() -> str:
    """Every code node at ``$root`` or under it: ``path``, labels, ``content_hash`` and id.

    Under it means a path starting with ``$root + '/'`` (a folder's content) or
    ``$root + '::'`` (a file's classes and functions). Documentation and session registry nodes
    are not code nodes.
    """
    return (
        "MATCH (n) WHERE (n.path = $root OR n.path STARTS WITH ($root + '/') "
        f"OR n.path STARTS WITH ($root + '::')) AND {_in_scope('n')} "
        "RETURN id(n) AS node_id, n.path AS path, labels(n) AS labels, "
        "n.content_hash AS content_hash ORDER BY node_id"
    )


def update_nodes_query() -> str:
    """Set the properties of the map ``$rows[k]`` on the node with id ``$node_ids[k]``."""
    return (
        "UNWIND range(0, size($node_ids) - 1) AS k "
        "WITH $node_ids[k] AS node_id, $rows[k] AS row "
        "MATCH (n) WHERE id(n) = node_id SET n += row "
        "RETURN count(n) AS updated"
    )


def delete_documentation_query() -> str:
    """Delete the DOCUMENTATION nodes that describe the nodes with ids ``$node_ids``."""
    return (
        "UNWIND $node_ids AS node_id "
        "MATCH (n) WHERE id(n) = node_id "
        f"MATCH (d:{DOCUMENTATION_LABEL})-[:{DESCRIBES}]->(n) "
        "WITH DISTINCT d DETACH DELETE d "
        "RETURN count(*) AS deleted"
    )


def delete_nodes_query() -> str:
    """Delete the nodes with ids ``$node_ids`` and every edge they have."""
    return (
        "UNWIND $node_ids AS node_id "
        "MATCH (n) WHERE id(n) = node_id "
        "DETACH DELETE n "
        "RETURN count(*) AS deleted"
    )


def outgoing_edges_query(relationship_type: str) -> str:
    """The ``relationship_type`` edges leaving the nodes with ids ``$node_ids``, per source.

    ``targets`` lists one id per edge, so parallel edges show as repeats.
    """
    rel = validate_identifier(relationship_type, "relationship type")
    return (
        "UNWIND $node_ids AS node_id "
        "MATCH (a) WHERE id(a) = node_id "
        f"MATCH (a)-[:{rel}]->(b) "
        "RETURN node_id AS source, collect(id(b)) AS targets"
    )


def delete_edges_query(relationship_type: str) -> str:
    """Delete every ``relationship_type`` edge from ``$sources[k]`` to ``$targets[k]`` (ids)."""
    rel = validate_identifier(relationship_type, "relationship type")
    return (
        "UNWIND range(0, size($sources) - 1) AS k "
        "WITH $sources[k] AS source, $targets[k] AS target "
        "MATCH (a) WHERE id(a) = source "
        f"WITH a, target MATCH (a)-[r:{rel}]->(b) WHERE id(b) = target "
        "DELETE r "
        "RETURN count(*) AS deleted"
    )


# ------------------------------------------------------------------------------- for the lint


def example_queries() -> list[tuple[str, str, dict[str, Any]]]:
    """Every builder called with representative arguments: ``(name, query, params)``.

    ``tests/test_cypher_lint.py`` sends these through Neo4j's Cypher front end, and checks that
    no ``*_query`` builder of this module is missing here.
    """
    sid = "0123456789abcdef0123456789abcdef"
    s: dict[str, Any] = {"session_id": sid}
    return [
        ("find_node_query", find_node_query(), {"node_path": "/a.py"}),
        ("node_content_query", node_content_query(), {"node_path": "/a.py"}),
        ("initialize_processing_session_query", initialize_processing_session_query(sid), s),
        (
            "initialize_processing_session_query",
            initialize_processing_session_query(sid, scope="subtree", relationship_type="CALLS"),
            {**s, "root_path": "/a.py"},
        ),
        ("scope_edges_query", scope_edges_query(sid, "CALLS"), s),
        ("scope_node_ids_query", scope_node_ids_query(sid), s),
        (
            "mark_processing_status_query",
            mark_processing_status_query(sid),
            {**s, "node_path": "/a.py", "status": "completed"},
        ),
        (
            "mark_processing_status_batch_query",
            mark_processing_status_batch_query(sid),
            {**s, "node_paths": ["/a.py"], "status": "failed"},
        ),
        (
            "mark_status_by_ids_query",
            mark_status_by_ids_query(sid),
            {**s, "node_ids": [1, 2], "status": "completed"},
        ),
        (
            "advance_session_query",
            advance_session_query(sid),
            {**s, "completed": [1], "failed": [2], "claim": [3, 4]},
        ),
        (
            "get_processable_nodes_query",
            get_processable_nodes_query(sid, "CONTAINS"),
            {**s, "batch_size": 10},
        ),
        ("session_status_counts_query", session_status_counts_query(sid), s),
        ("cleanup_session_query", cleanup_session_query(sid), s),
        (
            "cleanup_session_query",
            cleanup_session_query(sid, batched=True),
            {**s, "batch_size": 10_000},
        ),
        (
            "save_documentation_query",
            save_documentation_query(),
            {**s, "node_ids": [1], "texts": ["doc"]},
        ),
        (
            "register_session_query",
            register_session_query(),
            {
                **s,
                "root_path": "/a.py",
                "scope": "graph",
                "relationship_type": "CONTAINS",
                "host": "h",
                "pid": 1,
                "timeout_s": None,
                "heartbeat_interval_s": 5.0,
            },
        ),
        ("heartbeat_query", heartbeat_query(), {**s, "completed": 1, "failed": 0, "total": 2}),
        ("delete_session_registry_query", delete_session_registry_query(), s),
        ("list_registered_sessions_query", list_registered_sessions_query(), {}),
        ("list_status_keys_query", list_status_keys_query(), {}),
        ("database_time_query", database_time_query(), {}),
        ("create_nodes_query", create_nodes_query("FUNCTION"), {"rows": [{"path": "/a.py"}]}),
        (
            "create_edges_query",
            create_edges_query("CALLS"),
            {"sources": [1], "targets": [2]},
        ),
        (
            "code_nodes_under_root_query",
            code_nodes_under_root_query(),
            {"root": "/shop"},
        ),
        (
            "update_nodes_query",
            update_nodes_query(),
            {"node_ids": [1], "rows": [{"text": "def f(): pass", "content_hash": "ab"}]},
        ),
        ("delete_documentation_query", delete_documentation_query(), {"node_ids": [1]}),
        ("delete_nodes_query", delete_nodes_query(), {"node_ids": [1]}),
        ("outgoing_edges_query", outgoing_edges_query("CONTAINS"), {"node_ids": [1, 2]}),
        (
            "delete_edges_query",
            delete_edges_query("CALLS"),
            {"sources": [1], "targets": [2]},
        ),
    ]
