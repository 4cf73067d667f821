"""The scheduler of one session: keep every worker busy, one database round trip per batch.

It reads the session's structure once into a ``graph.DependencyGraph``, hands ready nodes to
the worker pool as soon as a worker frees up, and writes finished states and claims the next
batch in one query (``advance_session_query``), with hysteresis so that round trips stay few
and large. Workers never touch the database; what they need travels in ``SessionRun``.
"""

from __future__ import annotations

import logging
import queue
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future

from . import queries as q
from . import read_queries as rq
from .db import GraphDB
from .dispatch import Dispatch
from .errors import (
    BudgetExceededError,
    NodeNotFoundError,
    QueryError,
    SessionCancelled,
    SessionStateLostError,
)
from .graph import DependencyGraph, depths
from .migration import adopt_documentation
from .priorities import ReadyQueue, chain_above
from .progress import SessionProgress
from .prompts import NodeContent, error_description
from .readahead import ReadAhead
from .session import NodeRecord, describe_error
from .session_run import Completions, Outcome, SessionRun
from .simulate import remaining_s
from .workers import WorkerPool

__all__ = ["Completions", "Scheduler", "ScopeWarning", "SessionRun"]

log = logging.getLogger("blarify_lab")

FLUSH_INTERVAL_S = 0.2  # finished nodes reach the graph at least this often
DOCS_BATCH = 64  # documentation rides along with a claim once this many are waiting


class ScopeWarning(UserWarning):
    """A session documents more than its root reaches (``scope="graph"``)."""


class Scheduler:
    """Runs one session's nodes through a worker pool, leaves first."""

    def __init__(
        self,
        db: GraphDB,
        run: SessionRun,
        *,
        max_workers: int,
        work: Callable[[SessionRun, int], tuple[str, bool]],
        max_text_chars: int,
        save_documentation: bool,
        budget_usd: float | None = None,
    ) -> None:
        self.db_manager = db
        self.run = run
        self.max_workers = max_workers
        self.work = work
        self.max_text_chars = max_text_chars
        self.save_documentation = save_documentation
        self.budget_usd = budget_usd

    def initialise(self) -> None:
        """Mark the scope pending and read its structure into memory.

        A ``"graph"`` scope is marked in one query, a ``"subtree"`` one level by level; then
        one query reads the edges, and one more the scope's ids only when some node has no
        edge inside the scope. The client's cost is per value returned, so this stays small.
        """
        run = self.run
        session = run.session
        sid = session.session_id
        expected = self._mark_scope()
        if run.reuse:  # before any documentation is looked up by key
            self._ensure_documentation_key()
        edges = self.db_manager.run_query(
            q.scope_edges_query(sid, session.relationship_type), {"session_id": sid}
        )
        graph = DependencyGraph((int(r["parent"]), [int(c) for c in r["children"]]) for r in edges)
        if len(graph) < expected:  # nodes with no edge in the scope
            rows = self.db_manager.run_query(q.scope_node_ids_query(sid), {"session_id": sid})
            graph = DependencyGraph(
                ((int(r["parent"]), [int(c) for c in r["children"]]) for r in edges),
                (int(i) for i in rows[0]["node_ids"]),
            )
        if len(graph) != expected:
            log.warning(
                "session %s: %d nodes marked but %d found; was the graph changed meanwhile?",
                sid,
                expected,
                len(graph),
            )
        run.graph = graph
        run.text_users = {i: len(ps) for i, ps in graph.parents.items()}
        run.text_users[run.root_id] = run.text_users.get(run.root_id, 0) + 1
        found = depths(graph.children, run.root_id)
        if session.scope == "graph":
            self._say_scope(len(graph), len(found))
        session.begin({i: NodeRecord(node_id=i, depth=found.get(i)) for i in graph.children})
        if run.root_id not in graph:
            raise NodeNotFoundError(
                f"node {session.root_path!r} is not part of the session's scope"
            )
        self._break_cycles()  # before the start: no worker ever idles waiting for a stall
        run.priority = chain_above(graph.parents)

    def _ensure_documentation_key(self) -> None:
        """One documentation node per code node, found by index: Neo4j's uniqueness
        constraint, or FalkorDB's index (which exists after the first session); then the
        tenant's documentation stored before stable keys is carried over (once)."""
        if self.run.adopt:  # on Neo4j, the constraint on internal ids is dropped first
            adopt_documentation(self.db_manager, self.run.schema)
        if getattr(self.db_manager, "backend", None) == "neo4j":
            self.db_manager.run_query(q.documentation_constraint_query(), {})
            return
        try:
            self.db_manager.run_query(q.documentation_index_query(), {})
        except QueryError as err:
            if "already indexed" not in err.backend_message:
                raise

    def _mark_scope(self) -> int:
        """Mark the session's nodes ``pending``; returns how many were marked."""
        session, schema = self.run.session, self.run.schema
        sid = session.session_id
        params: dict[str, object] = {"session_id": sid, **schema.params()}
        if session.scope == "graph":
            rows = self.db_manager.run_query(
                q.initialize_processing_session_query(sid, schema), params
            )
            return int(rows[0]["count"]) if rows else 0
        rows = self.db_manager.run_query(
            q.mark_nodes_query(sid, schema), {**params, "node_ids": [self.run.root_id]}
        )
        frontier = [int(r["node_id"]) for r in rows]
        marked = len(frontier)
        expand = q.expand_scope_query(sid, session.relationship_type, schema)
        while frontier:  # one round trip per level: each node is marked, and expanded, once
            rows = self.db_manager.run_query(expand, {**params, "frontier": frontier})
            frontier = [int(r["node_id"]) for r in rows]
            marked += len(frontier)
        return marked

    def _say_scope(self, total: int, inside: int) -> None:
        """A scope="graph" session that reaches beyond the root's subtree says so first."""
        session = self.run.session
        session.outside_subtree = max(total - inside, 0)
        if session.outside_subtree:
            warnings.warn(
                f"session {session.session_id}: scope='graph' documents all {total} code nodes "
                f"of the graph, of which {session.outside_subtree} lie outside the {inside} "
                f"that {session.root_path!r} reaches; pass scope='subtree' to document only "
                "those",
                ScopeWarning,
                stacklevel=2,
            )

    def _break_cycles(self) -> list[int]:
        """Cut every cycle among the pending nodes (``graph.break_cycles``), once, when the
        structure is read: every cyclic component is pending then, so the cut is the one a
        stall would make. The children a cut leaves behind are not claimed yet, so their
        paths, which the prompts of the nodes above them name, are read now (one read-only
        query, only when there are cycles)."""
        run = self.run
        released = run.graph.break_cycles()
        run.session.cycles = len(run.graph.cycle_sources)
        nodes = run.session.nodes
        unnamed = sorted(
            {
                child
                for source in run.graph.cycle_sources
                for child in run.graph.children.get(source, ())
                if not nodes[child].path
            }
        )
        if unnamed:
            rows = self.db_manager.run_query(
                rq.nodes_contents_query(run.schema), {"node_ids": unnamed}
            )
            for row in rows:
                record = nodes.get(int(row["node_id"]))
                if record is not None and not record.path:
                    record.path = str(row["path"])
                    record.labels = tuple(str(label) for label in row["labels"])
                    record.name = row["name"] if isinstance(row["name"], str) else None
        return released

    def _over_budget(self) -> bool:
        """The session has spent its ``max_cost_usd``: claim nothing more."""
        if self.budget_usd is None:
            return False
        return (self.run.session.cost_usd or 0.0) >= self.budget_usd

    def store_what_is_done(self, err: BaseException) -> None:
        """The session ends early: store the documentation it finished (best effort)."""
        try:
            self.flush()
        except Exception as flush_error:  # the database may be what failed
            log.warning("could not store the finished documentation: %s", flush_error)
            err.add_note("the documentation finished since the last write was not stored")

    def flush(self) -> None:
        """Store what is finished and not yet written (the session is ending early)."""
        if self.run.docs or self.run.unflushed:
            self._advance(self.run, [])

    def schedule(self, pool: WorkerPool, deadline: float | None, reporter: SessionProgress) -> None:
        """Keep every worker busy: submit ready nodes as soon as a worker frees up."""
        run = self.run
        session = run.session
        ready = ReadyQueue(run.priority, run.graph.ready())
        w = self.max_workers
        dispatch = Dispatch(run.priority, lambda node_id: self.work(run, node_id), w)
        reporter.eta = lambda: remaining_s(  # the forecast's bound, at this run's call times
            session.total - finished, dispatch.task_s, w, max(ready.best(), dispatch.best())
        )
        self._read_ahead = ReadAhead(run.graph.parents, run.graph.unfinished)
        self._due: list[int] = []  # parents to read ahead in the next round trip
        known: list[int] = []  # ready, content read ahead: start without a round trip
        running: set[Future[Outcome]] = set()
        # Hysteresis keeps database round trips few and large: while half the target (3 per
        # worker; more for quick calls) is in flight every worker is busy and has work
        # queued, so results may pile up; below that, claim whatever is ready, up to target.
        finished = 0
        while True:
            high = dispatch.in_flight_target()
            low = (high + 1) // 2
            if run.cancel.is_set():
                raise SessionCancelled(f"session {session.session_id} was cancelled")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(
                    f"session {session.session_id} timed out after {session.timeout:g} s "
                    f"with {finished} of {session.total} nodes documented; its state was "
                    "removed from the graph"
                )
            over_budget = self._over_budget()
            if known and not over_budget:
                dispatch.submit(pool, self._start_known(run, known), running, run.completions.put)
                known = []
            if ready and len(running) < low and not over_budget:
                claimed = self._advance(run, ready.take(high - len(running)))
                dispatch.submit(pool, claimed, running, run.completions.put)
                continue
            if (self._due and not over_budget) or (
                (run.unflushed or run.docs) and now - run.last_flush >= FLUSH_INTERVAL_S
            ):
                self._advance(run, [])
            if not running:
                if finished >= session.total or not run.graph.pending:
                    self._advance(run, [])
                    return
                if over_budget:  # the calls in flight have finished: store them, then stop
                    self._advance(run, [])
                    spent = session.cost_usd or 0.0
                    raise BudgetExceededError(session.session_id, spent, self.budget_usd or 0.0)
                ready.extend(self._break_cycles())  # never after the cut at the start
                continue
            wait = None if deadline is None else max(0.0, deadline - now)
            if run.unflushed or run.docs:
                flush_in = max(0.0, run.last_flush + FLUSH_INTERVAL_S - now)
                wait = flush_in if wait is None else min(wait, flush_in)
            try:  # O(1) per finished node, unlike concurrent.futures.wait over all in flight
                done = [run.completions.get(timeout=wait)]
            except queue.Empty:
                continue
            while True:
                try:
                    done.append(run.completions.get_nowait())
                except queue.Empty:
                    break
            results: list[tuple[int, str, bool]] = []
            for future in done:
                if future is None:
                    continue
                running.discard(future)
                err = future.exception()
                if err is not None:
                    raise err  # not the node's work: the scheduler's own machinery
                node_id, outcome = future.result()
                if not isinstance(outcome, Exception):
                    results.append((node_id, *outcome))
                else:  # the unit of work itself failed
                    err = outcome
                    run.errors[node_id] = describe_error(err)
                    results.append(
                        (
                            node_id,
                            run.text(node_id, error_description(err), self.max_text_chars),
                            False,
                        )
                    )
            if results:
                finished += len(results)
                newly = self._finish(run, results)
                known += [n for n in newly if n in run.content]
                ready.extend(n for n in newly if n not in run.content)
                reporter.update(len(results))

    def _start_known(self, run: SessionRun, nodes: list[int]) -> list[int]:
        """Claim nodes whose content was read ahead; the graph learns it with the next write."""
        for node_id in nodes:
            content = run.content[node_id]
            run.session.claimed(node_id, content.path, content.labels, content.name)
            run.graph.claim(node_id)
        run.unflushed.setdefault("started", []).extend(nodes)
        self._due.extend(self._read_ahead.claimed(nodes))
        return nodes

    def _advance(self, run: SessionRun, claim: list[int]) -> list[int]:
        """One round trip: write the states of finished nodes and claim ``claim``, reading
        ahead the parents that wait only on claimed children.

        Documentation is written in batches: with a claim or a read-ahead, only once ``DOCS_BATCH`` are
        waiting or ``FLUSH_INTERVAL_S`` has passed since the last write (every write query
        that creates nodes and edges costs FalkorDB more the more it created before, so one
        per node made a deep chain quadratic); without a claim (a flush), always.
        Returns the claimed ids, with what their workers need kept in memory.
        """
        sid = run.session.session_id
        pending = run.graph.pending
        due = self._due + self._read_ahead.claimed(claim)
        wanted = set(claim) | run.content.keys()
        ahead = [p for p in dict.fromkeys(due) if p in pending and p not in wanted]
        self._due = []
        now = time.monotonic()
        docs_due = (
            not (claim or ahead)
            or len(run.docs) >= DOCS_BATCH
            or now - run.docs_at >= FLUSH_INTERVAL_S
        )
        rows = self.db_manager.run_query(
            q.advance_session_query(sid, run.schema),
            {
                "session_id": sid,
                "docs": run.docs if docs_due else [],
                "started": run.unflushed.get("started", []),
                "completed": run.unflushed.get("completed", []),
                "failed": run.unflushed.get("failed", []),
                "claim": claim,
                "ahead": ahead,
            },
        )
        run.unflushed.clear()
        if docs_due:
            run.docs = []
            run.docs_at = now
        run.last_flush = time.monotonic()
        claimed: list[int] = []
        for row in rows:
            node_id = int(row["node_id"])
            if node_id in run.content:  # a second row for one node: never expected
                continue
            doc_hash, doc_description = row.get("doc_hash"), row.get("doc_description")
            finished = row.get("doc_truncated") is not True  # a cut-short answer: ask again
            if (
                run.reuse
                and finished
                and isinstance(doc_hash, str)
                and isinstance(doc_description, str)
            ):
                run.stored[node_id] = (doc_hash, doc_description)
                if row.get("doc_linked") is False:  # a rebuilt graph: written again, linked
                    run.unlinked.add(node_id)
            path = str(row["path"])
            labels = tuple(str(label) for label in row["labels"])
            run.content[node_id] = NodeContent(path, labels, row["name"], row["text"])
            run.path_ids.setdefault(path, node_id)
            if row.get("ahead"):
                continue
            run.session.claimed(node_id, path, labels, row["name"])
            run.graph.claim(node_id)
            claimed.append(node_id)
        if len(claimed) < len(claim):  # removed from the graph, or its state removed under us
            raise SessionStateLostError(sid, len(claim) - len(claimed))
        order = {node_id: k for k, node_id in enumerate(claim)}
        return sorted(claimed, key=order.__getitem__)  # the ready order, whatever the rows'

    def _finish(self, run: SessionRun, results: list[tuple[int, str, bool]]) -> list[int]:
        """Record finished nodes (the graph is told on the next round trip); return parents
        that became ready."""
        newly_ready: list[int] = []
        for node_id, text, ok in results:
            description, cached = run.outcome.pop(node_id, (None, False))
            run.session.finished(
                node_id,
                ok=ok,
                error=run.errors.pop(node_id, None),
                cycle=node_id in run.graph.cycle_sources,
                cached=cached,
                description=description,
            )
            run.unflushed.setdefault("completed" if ok else "failed", []).append(node_id)
            run.texts[node_id] = text
            made = run.made.pop(node_id, None)
            run.stored.pop(node_id, None)
            run.unlinked.discard(node_id)
            if ok and made is not None and self.save_documentation:
                run.docs.append(made)
            run.content.pop(node_id, None)
            for child in run.graph.children.get(node_id, ()):
                self._release_text(run, child)
            newly_ready.extend(run.graph.finish(node_id))
            if run.text_users.get(node_id, 0) == 0:
                run.texts.pop(node_id, None)
                run.descriptions.pop(node_id, None)
        return newly_ready

    def _release_text(self, run: SessionRun, node_id: int) -> None:
        left = run.text_users.get(node_id, 0) - 1
        run.text_users[node_id] = left
        if left <= 0:
            run.texts.pop(node_id, None)
            run.descriptions.pop(node_id, None)

    # ------------------------------------------------------------------------------ workers
