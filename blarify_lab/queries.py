"""Every Cypher query blarify_lab sends, built in one place.

The queries are written in the subset that both Neo4j 5 and FalkorDB understand (no ``EXISTS {}``
subqueries, no pattern comprehensions, no ``datetime()``, no ``SET n[$key]``), and every builder
is fed to Neo4j's own Cypher front end by ``tests/test_cypher_lint.py``.

Only four kinds of things are ever interpolated into query text, each validated first: a
session id (32 lowercase hex characters), the suffix of a malformed status key found in the
graph (``[A-Za-z0-9_]{1,64}``), a relationship type and a label (ASCII identifiers).
Every value travels as a parameter.
"""

from __future__ import annotations

import re
from typing import Literal

from .doc_queries import doc_lookup, prompt_columns
from .names import DESCRIBES, DOCUMENTATION_LABEL, SESSION_LABEL, validate_identifier
from .schema import GraphSchema

__all__ = [
    "DOCUMENTATION_LABEL",
    "NODE_STATUSES",
    "SESSION_LABEL",
    "STATUS_PREFIX",
    "Scope",
    "optional_relationship_types",
    "status_property",
    "validate_identifier",
    "validate_relationship_types",
    "validate_session_id",
    "validate_status_suffix",
]

STATUS_PREFIX = "processing_status_"
NODE_STATUSES = ("pending", "in_progress", "completed", "failed")
FINISHED_STATUSES = ("completed", "failed")
Scope = Literal["graph", "subtree"]
DEFAULT_SCHEMA = GraphSchema()

SESSION_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_STATUS_SUFFIX = re.compile(r"[A-Za-z0-9_]{1,64}")


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is 32 lowercase hex characters (``uuid4().hex``), else raise.

    The id becomes part of a property name, so this is the guard against Cypher injection.
    """
    if not isinstance(session_id, str) or SESSION_ID_PATTERN.fullmatch(session_id) is None:
        raise ValueError(
            f"invalid session id {session_id!r}: a session id is 32 lowercase hex characters "
            "(uuid.uuid4().hex); list the real ones with blarify_lab.list_sessions(db) or "
            "`blarify-lab sessions list`"
        )
    return session_id


def validate_relationship_types(types: object) -> str:
    """Return ``types`` (``A`` or ``A|B|C``) if every type in it is a plain identifier."""
    if not isinstance(types, str):
        raise ValueError(f"invalid relationship type {types!r}: a string such as 'CONTAINS'")
    return "|".join(validate_identifier(t, "relationship type") for t in types.split("|"))


def optional_relationship_types(types: object) -> str | None:
    """``None`` (the schema's types), or ``types`` checked as ``validate_relationship_types``."""
    return None if types is None else validate_relationship_types(types)


def validate_status_suffix(suffix: object) -> str:
    """Return ``suffix`` if ``processing_status_<suffix>`` is a safe property name to remove
    (``[A-Za-z0-9_]{1,64}``): how a malformed status key left in the graph is named."""
    if not isinstance(suffix, str) or _STATUS_SUFFIX.fullmatch(suffix) is None:
        raise ValueError(
            f"invalid status key suffix {suffix!r}: letters, digits and underscores only "
            "(1 to 64 of them)"
        )
    return suffix


def status_property(session_id: str) -> str:
    """The node property that holds one session's processing status."""
    return STATUS_PREFIX + validate_session_id(session_id)


def _in_scope(var: str) -> str:
    """The filter that keeps session registry and documentation nodes out of every scope."""
    return (
        f"{var}.path IS NOT NULL AND NOT {var}:{SESSION_LABEL} AND NOT {var}:{DOCUMENTATION_LABEL}"
    )


# ------------------------------------------------------------------------------ node lookups


def find_node_query(schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """Code nodes (of the tenant) named ``$node_path`` by identity or key; at most 11, so
    that an ambiguous name can be reported with the nodes it matches."""
    return (
        f"MATCH (n) WHERE {schema.named('n', 'node_path')} AND {schema.code_filter('n')} "
        f"RETURN id(n) AS node_id, {schema.kinds('n')} AS labels, "
        f"{schema.identity('n')} AS path, {schema.key('n')} AS key, "
        f"[{', '.join(f'n.{p}' for p, _ in schema.tenant)}] AS tenant ORDER BY node_id LIMIT 11"
    )


def node_content_query(schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """What a prompt needs of the node named ``$node_path`` (documenting it outside a session)."""
    return (
        f"MATCH (n) WHERE {schema.named('n', 'node_path')} AND {schema.code_filter('n')} "
        f"RETURN id(n) AS node_id, {schema.kinds('n')} AS labels, n.name AS name, "
        "n.text AS text ORDER BY node_id LIMIT 1"
    )


# ------------------------------------------------------------------- per-session node state


def initialize_processing_session_query(
    session_id: str, schema: GraphSchema = DEFAULT_SCHEMA
) -> str:
    """Mark every code node of the graph (of the tenant) ``pending`` (a ``scope="graph"``
    session); returns their ``count``. A ``"subtree"`` session marks its scope level by level
    instead (``mark_nodes_query`` then ``expand_scope_query``): a variable-length pattern would
    walk every path, which explodes on a call graph with cycles."""
    prop = status_property(session_id)
    return (
        f"MATCH (n) WHERE {schema.code_filter('n')} SET n.{prop} = 'pending' "
        "RETURN count(n) AS count"
    )


def mark_nodes_query(session_id: str, schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """Mark the code nodes with ids ``$node_ids`` ``pending`` (not yet in the session)."""
    prop = status_property(session_id)
    return (
        "UNWIND $node_ids AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND {schema.code_filter('n')} AND n.{prop} IS NULL "
        f"SET n.{prop} = 'pending' RETURN id(n) AS node_id"
    )


def expand_scope_query(
    session_id: str, relationship_type: str = "CONTAINS", schema: GraphSchema = DEFAULT_SCHEMA
) -> str:
    """One level of a ``"subtree"`` session's scope: the children (through
    ``relationship_type``, one type or ``A|B``) of the nodes ``$frontier`` that are not in the
    session yet are marked ``pending`` and returned, each once, as the next frontier."""
    prop = status_property(session_id)
    rel = validate_relationship_types(relationship_type)
    return (
        "UNWIND $frontier AS node_id MATCH (a) WHERE id(a) = node_id WITH a "  # a seek, no scan
        f"MATCH (a)-[:{rel}]->(b) WHERE {schema.code_filter('b')} "
        f"AND b.{prop} IS NULL "
        "WITH DISTINCT b "
        f"SET b.{prop} = 'pending' RETURN id(b) AS node_id"
    )


def scope_edges_query(session_id: str, relationship_type: str = "CONTAINS") -> str:
    """The ``relationship_type`` edges (one type or ``A|B``) inside the session: one row of two
    parallel lists, ``parents`` and ``children`` (edge k goes from ``parents[k]`` to
    ``children[k]``).

    One row because the client's cost is mostly per row (a call graph of 10,000 functions:
    21 ms as one row, 50 ms as a row per parent).
    """
    prop = status_property(session_id)
    rel = validate_relationship_types(relationship_type)
    return (
        f"MATCH (a)-[:{rel}]->(b) WHERE a.{prop} IS NOT NULL AND b.{prop} IS NOT NULL "
        "RETURN collect(id(a)) AS parents, collect(id(b)) AS children"
    )


def scope_node_ids_query(session_id: str) -> str:
    """The internal ids of every node of the session."""
    prop = status_property(session_id)
    return f"MATCH (n) WHERE n.{prop} IS NOT NULL RETURN collect(id(n)) AS node_ids"


def advance_session_query(session_id: str, schema: GraphSchema = DEFAULT_SCHEMA) -> str:
    """The scheduler's one round trip: store ``$docs``, mark ``$started`` (read ahead, now
    running), finish ``$completed``/``$failed``, claim ``$claim``, read ``$ahead`` (kept
    pending; rows with ``ahead`` true).

    ``$docs`` is a list of maps ``{node_id, description, input_hash, model, truncated,
    latency_s, prompt_tokens, completion_tokens, attempts}`` (``node_id`` the internal id):
    each code node gets one ``DOCUMENTATION`` node keyed by its stable key (``doc_key``), in
    the schema's layout, that ``DESCRIBES`` it. Claimed and ahead rows carry what a prompt
    needs and the stored ``doc_hash``/``doc_description``/``doc_truncated`` (a truncated
    answer is never reused).
    """
    prop = status_property(session_id)
    return (
        "UNWIND $docs AS doc WITH doc, doc.node_id AS key "  # a variable: FalkorDB's index
        f"MATCH (n) WHERE id(n) = key AND {schema.code_filter('n', with_tenant=False)} "
        f"WITH doc, n, {schema.key('n')} AS doc_key "
        f"MERGE (d:{DOCUMENTATION_LABEL} {{doc_key: doc_key}}) "
        f"MERGE (d)-[:{DESCRIBES}]->(n) "
        f"SET {schema.doc_fields('d', 'n', 'doc')}, d.latency_s = doc.latency_s, "
        "d.prompt_tokens = doc.prompt_tokens, d.completion_tokens = doc.completion_tokens, "
        "d.attempts = doc.attempts WITH count(*) AS saved UNWIND $started AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} = 'pending' SET n.{prop} = 'in_progress' "
        "WITH count(*) AS started UNWIND $completed AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} IS NOT NULL SET n.{prop} = 'completed' "
        "WITH count(*) AS finished "
        "UNWIND $failed AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} IS NOT NULL SET n.{prop} = 'failed' "
        "WITH count(*) AS finished "
        "UNWIND $claim + $ahead AS node_id "
        f"MATCH (n) WHERE id(n) = node_id AND n.{prop} = 'pending' "
        f"WITH n, node_id IN $ahead AS ahead SET n.{prop} = CASE WHEN ahead THEN 'pending' "
        "ELSE 'in_progress' END "
        + doc_lookup(schema, carry="ahead")
        + prompt_columns(schema)
        + ", ahead"
    )


def call_measurements_query() -> str:
    """Read only: what the stored calls of ``$model`` took, the newest ``$limit`` first."""
    return (
        f"MATCH (d:{DOCUMENTATION_LABEL}) WHERE d.model = $model AND d.latency_s IS NOT NULL "
        "RETURN d.latency_s AS s, d.prompt_tokens AS p, d.completion_tokens AS c, d.attempts AS a "
        "ORDER BY d.updated_at DESC LIMIT $limit"
    )


def cleanup_session_query(session_id: str, *, batched: bool = False) -> str:
    """Remove the session's status property from its nodes, and nothing else.

    ``batched=True`` removes at most ``$batch_size`` per call (repeat until ``removed`` is 0),
    so that a big graph is never cleaned in one huge transaction.
    """
    prop = status_property(session_id)
    limit = "WITH n LIMIT $batch_size " if batched else ""
    return f"MATCH (n) WHERE n.{prop} IS NOT NULL {limit}REMOVE n.{prop} RETURN count(n) AS removed"


def documentation_constraint_query() -> str:
    """Neo4j only: one ``DOCUMENTATION`` node per stable key (``doc_key``: tenant and key,
    one property, so Community Edition enforces it), even under concurrent sessions
    (FalkorDB runs the write queries of one graph one at a time, so ``MERGE`` alone holds)."""
    return (
        f"CREATE CONSTRAINT blarify_documentation_key IF NOT EXISTS "
        f"FOR (d:{DOCUMENTATION_LABEL}) REQUIRE d.doc_key IS UNIQUE"
    )


def documentation_index_query() -> str:
    """FalkorDB: an index on the key of ``DOCUMENTATION`` nodes, so that storing and finding a
    node's documentation is a lookup, not a scan (Neo4j's constraint brings its own index)."""
    return f"CREATE INDEX FOR (d:{DOCUMENTATION_LABEL}) ON (d.doc_key)"


def cleanup_status_key_query(suffix: str) -> str:
    """Remove the property ``processing_status_<suffix>`` from at most ``$batch_size`` nodes
    (repeat until ``removed`` is 0): how a malformed status key, one not named after a session
    id, is removed on request."""
    prop = STATUS_PREFIX + validate_status_suffix(suffix)
    return (
        f"MATCH (n) WHERE n.{prop} IS NOT NULL WITH n LIMIT $batch_size "
        f"REMOVE n.{prop} RETURN count(n) AS removed"
    )


# ------------------------------------------------------------------------- session registry


def register_session_query() -> str:
    """Create the registry node of a running session.

    ``$pid_start`` is the process's start time (``/proc/<pid>/stat`` field 22; null where
    there is no ``/proc``): with ``host`` and ``pid`` it tells a live owner from a reused pid.
    """
    return (
        f"CREATE (s:{SESSION_LABEL} {{session_id: $session_id, root_path: $root_path, "
        "scope: $scope, relationship_type: $relationship_type, host: $host, pid: $pid, "
        "pid_start: $pid_start, timeout_s: $timeout_s, heartbeat_interval_s: $heartbeat_interval_s, "
        "started_at: timestamp(), heartbeat_at: timestamp(), state: 'running'}) "
        "RETURN s.started_at AS started_at"
    )


def describe_session_query() -> str:
    """Note on a registry node the schema (``$schema``) and tenant (``$tenant``) of its
    session (a session on a graph other than the default's)."""
    return (
        f"MATCH (s:{SESSION_LABEL}) WHERE s.session_id = $session_id "
        "SET s.schema = $schema, s.tenant = $tenant RETURN count(s) AS described"
    )


def heartbeat_query() -> str:
    """Refresh a running session's heartbeat (and its progress counters)."""
    return (
        f"MATCH (s:{SESSION_LABEL}) WHERE s.session_id = $session_id "
        "SET s.heartbeat_at = timestamp(), s.completed = $completed, s.failed = $failed, "
        "s.running = $running, s.queued = $queued, s.total = $total "
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
        "n.content_hash AS content_hash, n.source_dir AS source_dir ORDER BY node_id"
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
