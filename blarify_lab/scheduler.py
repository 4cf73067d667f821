"""The scheduler of one session: keep every worker busy, one database round trip per batch.

It reads the session's structure once (``scope``), hands ready nodes to the worker pool best
first as soon as a worker frees up, and writes finished states and claims the next batch in
one query (``advance_session_query``), with hysteresis so that round trips stay few and large.
A round trip travels on a thread of its own (``trips``) while the scheduler goes on. Workers
never touch the database; what they need travels in ``SessionRun``.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from . import queries as q
from .db import GraphDB
from .dispatch import Dispatch
from .errors import BudgetExceededError, SessionCancelled, SessionStateLostError
from .latency_model import LatencyModel
from .priorities import ReadyQueue
from .progress import SessionProgress
from .prompts import NodeContent, error_description
from .readahead import ReadAhead
from .scope import ScopeWarning, break_cycles, read_scope
from .session import describe_error
from .session_run import Completions, Outcome, SessionRun
from .simulate import remaining_s
from .trips import RoundTrips
from .workers import WorkerPool

__all__ = ["Completions", "Scheduler", "ScopeWarning", "SessionRun"]

log = logging.getLogger("blarify_lab")

FLUSH_INTERVAL_S = 0.2  # finished nodes reach the graph at least this often
DOCS_BATCH = 64  # documentation rides along with a claim once this many are waiting


@dataclass
class _Trip:
    """What one round trip carries: the nodes it claims, and the writes it took from ``run``."""

    claim: list[int]
    docs: list[dict[str, object]]
    unflushed: dict[str, list[int]]

    def restore(self, run: SessionRun) -> None:
        """The trip failed: its writes go back to ``run``, ahead of what came since."""
        run.docs[:0] = self.docs
        for state, nodes in self.unflushed.items():
            run.unflushed[state] = nodes + run.unflushed.get(state, [])


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
        latency: LatencyModel | None = None,
    ) -> None:
        self.db_manager = db
        self.run = run
        self.max_workers = max_workers
        self.work = work
        self.max_text_chars = max_text_chars
        self.save_documentation = save_documentation
        self.budget_usd = budget_usd
        self.latency = latency
        self._trips: RoundTrips[_Trip] | None = None
        self._due: list[int] = []  # parents to read ahead in the next round trip

    def initialise(self) -> None:
        """Mark the scope pending, read its structure, cut its cycles, rank its nodes."""
        read_scope(self.db_manager, self.run, self.latency)

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
        """Store what is finished and not yet written (the session is ending early); a round
        trip still on its way lands first."""
        trips = self._trips
        if trips is not None and trips.busy:
            try:
                self._take(self.run, trips, ending=True)
            except Exception as err:  # what it carried was put back: written below
                log.warning("a round trip failed as the session ended: %s", err)
        if self.run.docs or self.run.unflushed:
            self._advance(self.run, [], final=True)

    def schedule(self, pool: WorkerPool, deadline: float | None, reporter: SessionProgress) -> None:
        """Keep every worker busy: submit ready nodes as soon as a worker frees up."""
        run = self.run
        wake = run.completions.put
        self._trips = RoundTrips[_Trip](self.db_manager, lambda: wake(None), "blarify-trips")
        try:
            self._schedule(pool, deadline, reporter, self._trips)
        finally:
            self._trips.close()

    def _schedule(
        self,
        pool: WorkerPool,
        deadline: float | None,
        reporter: SessionProgress,
        trips: RoundTrips[_Trip],
    ) -> None:
        run = self.run
        session = run.session
        ready = ReadyQueue(run.priority, run.graph.ready())
        w = self.max_workers
        dispatch = Dispatch(run.priority, lambda node_id: self.work(run, node_id), w)
        reporter.eta = lambda: remaining_s(  # the forecast's bound, at this run's call times
            session.total - finished, dispatch.task_s, w, max(ready.best(), dispatch.best())
        )
        self._read_ahead = ReadAhead(run.graph.parents, run.graph.unfinished)
        known: list[int] = []  # ready, read ahead, first in line: start without a round trip
        running: set[Future[Outcome]] = set()
        # Hysteresis keeps database round trips few and large: while half the target (3 per
        # worker; more for quick calls) is in flight every worker is busy and has work
        # queued, so results may pile up; below that, claim whatever is ready, up to target.
        # A round trip runs on its own thread (``trips``): meanwhile nodes read ahead start.
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
            if trips.landed:
                dispatch.submit(pool, self._take(run, trips), running, run.completions.put)
            over_budget = self._over_budget()
            if known and not over_budget:
                dispatch.submit(pool, self._start_known(run, known), running, run.completions.put)
                known = []
                time.sleep(0)  # let the workers just handed a node take the GIL first
            if ready and len(running) < low and not over_budget:
                room = high - len(running)
                claim: list[int] = []
                if trips.busy:  # only what needs no round trip, best first
                    started = self._start_known(run, ready.take_while(run.content, room))
                else:
                    batch = ready.take(room)
                    started = self._start_known(run, [n for n in batch if n in run.content])
                    claim = [n for n in batch if n not in run.content]
                    if claim:
                        self._send(run, claim, trips)
                dispatch.submit(pool, started, running, run.completions.put)
                if started or claim:
                    continue
            if not trips.busy and (
                (self._due and not over_budget)
                or ((run.unflushed or run.docs) and now - run.last_flush >= FLUSH_INTERVAL_S)
            ):
                self._send(run, [], trips)
            if not running and not trips.busy:
                if finished >= session.total or not run.graph.pending:
                    self._advance(run, [], final=True)
                    return
                if over_budget:  # the calls in flight have finished: store them, then stop
                    self._advance(run, [], final=True)
                    spent = session.cost_usd or 0.0
                    raise BudgetExceededError(session.session_id, spent, self.budget_usd or 0.0)
                ready.extend(break_cycles(self.db_manager, run))  # none after the first cut
                continue
            wait = None if deadline is None else max(0.0, deadline - now)
            if (run.unflushed or run.docs) and not trips.busy:
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
                if future is None:  # a round trip landed, or only a wake-up
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
                for node_id in self._finish(run, results):
                    # read ahead and first in line: start at once; else wait for its turn
                    if node_id in run.content and run.priority.get(node_id, 0.0) >= ready.best():
                        known.append(node_id)
                    else:
                        ready.extend((node_id,))
                reporter.update(len(results))

    def _start_known(self, run: SessionRun, nodes: list[int]) -> list[int]:
        """Claim nodes whose content was read ahead; the graph learns it with the next write."""
        for node_id in nodes:
            content = run.content[node_id]
            run.session.claimed(node_id, content.path, content.labels, content.name)
            run.graph.claim(node_id)
        if nodes:
            run.unflushed.setdefault("started", []).extend(nodes)
            self._due.extend(self._read_ahead.claimed(nodes))
        return nodes

    def _advance(self, run: SessionRun, claim: list[int], *, final: bool = False) -> list[int]:
        """One round trip, waited for here (``final``: the session's last write)."""
        query, params, trip = self._request(run, claim, final=final)
        try:
            rows = self.db_manager.run_query(query, params)
        except BaseException:
            trip.restore(run)
            raise
        return self._land(run, rows, trip)

    def _send(self, run: SessionRun, claim: list[int], trips: RoundTrips[_Trip]) -> None:
        """One round trip, on its way while the scheduler goes on (``_take`` lands it)."""
        query, params, trip = self._request(run, claim)
        trips.send(query, params, trip)

    def _take(
        self, run: SessionRun, trips: RoundTrips[_Trip], *, ending: bool = False
    ) -> list[int]:
        """Land the round trip on its way (waiting for it if need be): the claimed ids
        (``ending``: the session has ended, so nothing it claimed is taken)."""
        trip = trips.sent()
        try:
            rows, trip = trips.take()
        except BaseException:
            if trip is not None and not trips.busy:  # it failed (not merely interrupted)
                trip.restore(run)  # what it carried is written by the next one
            raise
        return self._land(run, rows, trip, ending=ending)

    def _request(
        self, run: SessionRun, claim: list[int], *, final: bool = False
    ) -> tuple[str, dict[str, Any], _Trip]:
        """A round trip: write the states of finished nodes and claim ``claim``, reading
        ahead the parents that wait only on claimed children (none when ``final``: all the
        documentation waiting is written then). What it writes leaves ``run``
        (``_Trip.restore`` puts it back if the trip fails).

        Documentation is written in batches: with a claim or a read-ahead, only once
        ``DOCS_BATCH`` are waiting or ``FLUSH_INTERVAL_S`` has passed since the last write
        (every write query that creates nodes and edges costs FalkorDB more the more it
        created before, so one per node made a deep chain quadratic); without a claim (a
        flush), always.
        """
        sid = run.session.session_id
        pending = run.graph.pending
        due = self._due + self._read_ahead.claimed(claim)
        wanted = set(claim) | run.content.keys()
        ahead = [p for p in dict.fromkeys(due) if p in pending and p not in wanted]
        self._due = []
        if final:
            ahead = []
        now = time.monotonic()
        docs_due = (
            not (claim or ahead)
            or len(run.docs) >= DOCS_BATCH
            or now - run.docs_at >= FLUSH_INTERVAL_S
        )
        trip = _Trip(claim, run.docs if docs_due else [], run.unflushed)
        run.unflushed = {}
        if docs_due:
            run.docs = []
            run.docs_at = now
        run.last_flush = now
        params: dict[str, Any] = {
            "session_id": sid,
            "docs": trip.docs,
            "started": trip.unflushed.get("started", []),
            "completed": trip.unflushed.get("completed", []),
            "failed": trip.unflushed.get("failed", []),
            "claim": claim,
            "ahead": ahead,
        }
        return q.advance_session_query(sid, run.schema), params, trip

    def _land(
        self, run: SessionRun, rows: list[dict[str, Any]], trip: _Trip, *, ending: bool = False
    ) -> list[int]:
        """Take in a round trip's rows: what claimed and read-ahead nodes need, kept in
        memory. Returns the claimed ids in the order they were asked for (none when
        ``ending``: the session is over, its cleanup removes their marks)."""
        if ending:
            return []
        sid = run.session.session_id
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
        if len(claimed) < len(trip.claim):  # removed from the graph, or its state removed
            raise SessionStateLostError(sid, len(trip.claim) - len(claimed))
        order = {node_id: k for k, node_id in enumerate(trip.claim)}
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
