"""Which ``GraphSchema`` a graph has, when the caller does not say: detection and tenants.

A graph with blarify's own hierarchy types (``FUNCTION_DEFINITION``, ``CLASS_DEFINITION``) or
``node_path`` properties is blarify's. A blarify graph of one tenant keeps to it; one of
several tenants, with none chosen, is refused (``AmbiguousTenantError``, a ``ValueError``).
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any, Literal

from . import queries as q
from . import schema_queries as sq
from .db import GraphDB
from .errors import AmbiguousNodeError, AmbiguousTenantError, NodeNotFoundError
from .schema import GraphSchema

__all__ = [
    "SCHEMA_CHOICES",
    "SchemaChoice",
    "detect_schema",
    "find_root",
    "resolve_schema",
    "schema_named",
]

SchemaChoice = Literal["auto", "default", "blarify"]
SCHEMA_CHOICES: tuple[SchemaChoice, ...] = ("auto", "default", "blarify")


def schema_named(
    name: GraphSchema | str | None, entity_id: str | None = None, repo_id: str | None = None
) -> GraphSchema | None:
    """``"default"``, ``"blarify"`` (with the tenant given) or a schema as is; ``None`` or
    ``"auto"``: to be detected."""
    if name is None or name == "auto":
        if entity_id is not None or repo_id is not None:  # only blarify graphs have tenants
            return GraphSchema.blarify(entity_id=entity_id, repo_id=repo_id)
        return None
    if isinstance(name, GraphSchema):
        return name
    if name == "default":
        return GraphSchema()
    if name == "blarify":
        return GraphSchema.blarify(entity_id=entity_id, repo_id=repo_id)
    raise ValueError(
        f"invalid schema {name!r}: one of {', '.join(SCHEMA_CHOICES)} or a GraphSchema"
    )


def detect_schema(db: GraphDB) -> GraphSchema:
    """``GraphSchema.blarify()`` for a graph blarify built, else ``GraphSchema()``."""
    rows = db.run_query(sq.has_blarify_hierarchy_query(), {})
    if rows and rows[0]["theirs"]:
        return GraphSchema.blarify()
    if db.run_query(sq.has_code_nodes_query(GraphSchema.blarify()), {}):
        return GraphSchema.blarify()
    return GraphSchema()


def resolve_schema(db: GraphDB, schema: GraphSchema | str | None = None) -> GraphSchema:
    """The schema a session uses: ``schema`` (detected when ``None`` or ``"auto"``), keeping
    to the graph's only tenant when none was chosen. Raises ``AmbiguousTenantError`` when
    several tenants are found and none was chosen."""
    chosen = schema_named(schema)
    resolved = detect_schema(db) if chosen is None else chosen
    if not resolved.tenant or resolved.tenant_values:
        return resolved
    rows = db.run_query(sq.tenants_query(resolved), resolved.params())
    found = sorted({tuple(row["tenant"]) for row in rows}, key=repr)
    properties = [prop for prop, _ in resolved.tenant]
    if len(found) > 1:
        raise AmbiguousTenantError(properties, [tuple(t) for t in found])
    if not found:
        return resolved
    values = {p: (None if v is None else str(v)) for p, v in zip(properties, found[0], strict=True)}
    return resolved.with_tenant(values)


def find_root(
    db: GraphDB, name: str, schema: GraphSchema | None
) -> tuple[GraphSchema, list[dict[str, Any]]]:
    """The schema (detected from the root when ``schema`` is None, in the same read) and the
    code nodes ``name`` names in it (``node_id``, ``path``): none, one, or several."""
    if schema is None:
        rows = db.run_query(sq.find_root_any_schema_query(), {"node_path": name})
        if not rows or not any(row["blarify"] for row in rows):
            return GraphSchema(), rows
        schema = GraphSchema.blarify()
    schema = resolve_schema(db, schema)
    rows = db.run_query(q.find_node_query(schema), {"node_path": name, **schema.params()})
    return schema, rows


def root_node(db: GraphDB, name: str, schema: GraphSchema | None) -> tuple[GraphSchema, int]:
    """The schema and the internal id of the one code node ``name`` names; raises
    ``NodeNotFoundError`` for none and ``AmbiguousNodeError`` (listing them) for several."""
    schema, rows = find_root(db, name, schema)
    if not rows:
        tenant = f" in tenant {schema.tenant_label}" if schema.tenant_label else ""
        raise NodeNotFoundError(
            f"no code node has path {name!r}{tenant}; nothing was written. "
            + (
                _loaded_root_hint(db, name, schema)
                or "Check the path (paths are stored exactly as loaded; a blarify graph's "
                "node_path or node_id) or load the code first."
            )
        )
    if len(rows) > 1:
        paths = [str(r["path"]) for r in rows]
        if schema.tenant and len(set(paths)) < len(paths):  # the same identity, several tenants
            props = [prop for prop, _ in schema.tenant]
            paths = [
                f"{p} ({_tenant_text(props, r.get('tenant'))})"
                for p, r in zip(paths, rows, strict=True)
            ]
        raise AmbiguousNodeError(name, paths)
    return schema, int(rows[0]["node_id"])


def _tenant_text(properties: list[str], values: object) -> str:
    """``entityId=user-a, repoId=json``: a node's tenant as text."""
    if not isinstance(values, list) or not properties:
        return "no tenant"
    return ", ".join(f"{p}={v}" for p, v in zip(properties, values, strict=False))


def _loaded_root_hint(db: GraphDB, name: str, schema: GraphSchema) -> str | None:
    """For a filesystem path (``~/src/json``, ``./json``, ``/home/me/json``): the root that
    loading it made (``/json``: a package's root is named by its folder), when the graph has
    it."""
    local = os.path.expanduser(name)
    if not name.startswith(("~", ".", "/")) or not os.path.exists(local):
        return None  # not a path on this machine: nothing to suggest, no query
    folder = PurePosixPath(local.rstrip("/")).name
    if not folder or f"/{folder}" == name:
        return None
    root = f"/{folder}"
    if not db.run_query(q.find_node_query(schema), {"node_path": root, **schema.params()}):
        return None
    return (
        f"A loaded package is named by its folder's name, not where it lies on disk: "
        f"did you mean {root!r}? (load_python_package returns it as root_path)"
    )
