"""Carry stored documentation over to stable keys, once: run at the start of every session
that reuses documentation, idempotent, one cheap read when there is nothing to do.

Documentation nodes without a ``doc_key`` (ours from before stable keys, keyed by an internal
id; or blarify's own) that describe a code node of the session's tenant get that node's
stable key, unless a documentation node already holds it (then they are left as they are:
never two documentation nodes for one key).
"""

from __future__ import annotations

from . import schema_queries as sq
from .db import GraphDB
from .schema import GraphSchema

__all__ = ["ADOPT_BATCH", "adopt_documentation"]

ADOPT_BATCH = 5000


def adopt_documentation(db: GraphDB, schema: GraphSchema) -> int:
    """Key the tenant's unkeyed documentation nodes by their code node's stable key; returns
    how many were adopted. On Neo4j the constraint on internal ids goes first."""
    if getattr(db, "backend", None) == "neo4j":
        db.run_query(sq.drop_legacy_constraint_query(), {})
    adopted = 0
    find = sq.documentation_to_adopt_query(schema)
    skipped: set[int] = set()
    while True:
        rows = db.run_query(find, {**schema.params(), "limit": ADOPT_BATCH + len(skipped)})
        rows = [r for r in rows if int(r["doc"]) not in skipped]
        if not rows:
            return adopted
        keys = sorted({str(r["key"]) for r in rows if r["key"] is not None})
        taken = {
            str(r["key"]) for r in db.run_query(sq.taken_documentation_keys_query(), {"keys": keys})
        }
        chosen: dict[str, int] = {}
        for row in sorted(rows, key=lambda r: (not r["ours"], int(r["doc"]))):
            key = row["key"]
            if key is None or str(key) in taken or str(key) in chosen:
                skipped.add(int(row["doc"]))
                continue
            chosen[str(key)] = int(row["doc"])
        if not chosen:
            return adopted
        batch = [{"doc": doc, "key": key} for key, doc in chosen.items()]
        db.run_query(sq.adopt_documentation_query(schema), {"rows": batch})
        adopted += len(batch)
