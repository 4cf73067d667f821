"""Bottom-up documentation of a code graph, one isolated session at a time.

The scheduler keeps the session's structure (node ids and edges) in memory after one read, so
that finding the next ready node costs nothing; the graph holds the state of every node
(``processing_status_<session_id>``) and is written in batches as nodes are claimed and finished.
Workers never wait on each other and never touch the database: they document one node from what
the scheduler hands them.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import queries as q
from .db import GraphDB
from .errors import NodeNotFoundError, SessionCancelled, SessionCleanupError
from .llm import LLMProvider, as_llm_provider
from .progress import ProgressCallback, SessionProgress
from .sessions import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    Heartbeat,
    NodeRecord,
    ProcessingSession,
    SessionStatus,
    register_session,
    remove_session_traces,
)
from .workers import WorkerPool

if TYPE_CHECKING:
    from .handles import SessionHandle

__all__ = ["NodeNotFoundError", "RecursiveDFSProcessor", "SessionCancelled"]

log = logging.getLogger("blarify_lab")

ERROR_MARK = "[ERROR]"
CYCLE_MARK = "[CYCLE_DETECTED]"
DEFAULT_MAX_TEXT_CHARS = 4000
MAX_SOURCE_CHARS = 6000
FLUSH_INTERVAL_S = 0.2  # finished nodes reach the graph at least this often


@dataclass
class _Run:
    """The in-memory side of one running session (private to the scheduler and its workers)."""

    session: ProcessingSession
    root_id: int
    children: dict[int, list[int]] = field(default_factory=dict[int, list[int]])
    parents: dict[int, list[int]] = field(default_factory=dict[int, list[int]])
    unfinished: dict[int, int] = field(default_factory=dict[int, int])
    pending: set[int] = field(default_factory=set[int])
    info: dict[int, dict[str, Any]] = field(default_factory=dict[int, dict[str, Any]])
    texts: dict[int, str] = field(default_factory=dict[int, str])
    text_users: dict[int, int] = field(default_factory=dict[int, int])
    path_ids: dict[str, int] = field(default_factory=dict[str, int])
    cycle_nodes: set[int] = field(default_factory=set[int])
    unflushed: dict[str, list[int]] = field(default_factory=dict[str, list[int]])
    docs: dict[int, str] = field(default_factory=dict[int, str])
    last_flush: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    # finished futures arrive here (from done-callbacks); None just wakes the scheduler
    completions: queue.SimpleQueue[Future[tuple[str, bool]] | None] = field(
        default_factory=queue.SimpleQueue[Future[tuple[str, bool]] | None]
    )


_CURRENT: contextvars.ContextVar[tuple[_Run, int] | None] = contextvars.ContextVar(
    "blarify_lab_current_node", default=None
)


class RecursiveDFSProcessor:
    """Documents a code graph leaves-first with an LLM, each call one isolated session.

    ``process_node(path)`` gives every node of the session's scope a description built from
    the node itself and its children's descriptions, and returns the description of ``path``.
    All session state is removed when the call ends, however it ends.
    """

    def __init__(
        self,
        db_manager: GraphDB,
        llm_provider: LLMProvider | Callable[[str], str] | Any,
        max_workers: int = 5,
        timeout: float | None = None,
        *,
        scope: q.Scope = "graph",
        hierarchy_relationship: str = "CONTAINS",
        call_relationship: str = "CALLS",
        save_documentation: bool = False,
        progress: bool | ProgressCallback = True,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
        _check_timeout(timeout)
        if scope not in ("graph", "subtree"):
            raise ValueError(f"invalid scope {scope!r}: use 'graph' or 'subtree'")
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval!r}")
        if max_text_chars < 200:
            raise ValueError(f"max_text_chars must be at least 200, got {max_text_chars!r}")
        self.db_manager = db_manager
        self.llm_provider = llm_provider
        self.max_workers = max_workers
        self.timeout = timeout
        self.scope: q.Scope = scope
        self.hierarchy_relationship = q.validate_identifier(
            hierarchy_relationship, "relationship type"
        )
        self.call_relationship = q.validate_identifier(call_relationship, "relationship type")
        self.save_documentation = save_documentation
        self.progress = progress
        self.heartbeat_interval = heartbeat_interval
        self.max_text_chars = max_text_chars
        self.last_session: ProcessingSession | None = None
        self._provider = as_llm_provider(llm_provider)

    # ------------------------------------------------------------------------------ public
    def process_node(
        self,
        node_path: str,
        use_hierarchy: bool = True,
        *,
        scope: q.Scope | None = None,
        timeout: float | None = None,
        progress: bool | ProgressCallback | None = None,
    ) -> str:
        """Run one session and return the documentation of ``node_path``.

        ``use_hierarchy=True`` follows the hierarchy (``CONTAINS``), ``False`` the call graph
        (``CALLS``). ``scope="graph"`` documents every code node, ``"subtree"`` only what is
        reachable from ``node_path``. Raises ``TimeoutError`` when ``timeout`` seconds pass,
        ``NodeNotFoundError`` when no node has the path; cleans up in every case.
        """
        session = self._prepare(node_path, use_hierarchy, scope=scope, timeout=timeout)
        return self._execute(session, progress=progress)

    def start(
        self,
        node_path: str,
        use_hierarchy: bool = True,
        *,
        scope: q.Scope | None = None,
        timeout: float | None = None,
        progress: bool | ProgressCallback | None = None,
    ) -> SessionHandle:
        """Start a session in a background thread and return its handle at once.

        The handle's ``result()`` waits for the documentation, ``cancel()`` stops the session
        and cleans up, ``dashboard()`` shows it live in Jupyter.
        """
        from .handles import SessionHandle

        session = self._prepare(node_path, use_hierarchy, scope=scope, timeout=timeout)
        return SessionHandle._start(self, session, progress=progress)  # pyright: ignore[reportPrivateUsage]

    # ----------------------------------------------------------------------- session driver
    def _prepare(
        self,
        node_path: str,
        use_hierarchy: bool,
        *,
        scope: q.Scope | None,
        timeout: float | None,
    ) -> ProcessingSession:
        """Validate the request and create the session object (nothing is written yet)."""
        if not isinstance(node_path, str) or not node_path:
            raise ValueError(f"node_path must be a non-empty string, got {node_path!r}")
        scope = scope or self.scope
        if scope not in ("graph", "subtree"):
            raise ValueError(f"invalid scope {scope!r}: use 'graph' or 'subtree'")
        timeout = self.timeout if timeout is None else _check_timeout(timeout)
        rel = self.hierarchy_relationship if use_hierarchy else self.call_relationship
        session = ProcessingSession(
            session_id=uuid.uuid4().hex,
            root_path=node_path,
            scope=scope,
            relationship_type=rel,
            max_workers=self.max_workers,
            timeout=timeout,
        )
        return session

    def _execute(
        self,
        session: ProcessingSession,
        *,
        progress: bool | ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        wake: Future[None] | None = None,
    ) -> str:
        db = self.db_manager
        sid = session.session_id
        deadline = None if session.timeout is None else time.monotonic() + session.timeout
        root_id = self._find_root(session.root_path)
        self.last_session = session
        run = _Run(session=session, root_id=root_id)
        if cancel is not None:
            run.cancel = cancel
        if wake is not None:
            wake.add_done_callback(lambda _: run.completions.put(None))
        pool = WorkerPool(self.max_workers, name=f"blarify-{sid[:8]}")
        heartbeat = Heartbeat(db, session, self.heartbeat_interval)
        reporter = SessionProgress(session, self.progress if progress is None else progress)
        registered = False
        status: SessionStatus = "failed"
        error: BaseException | None = None
        try:
            register_session(
                db,
                session,
                host=socket.gethostname(),
                pid=os.getpid(),
                heartbeat_interval=self.heartbeat_interval,
            )
            registered = True
            heartbeat.start()
            self._initialise(run)
            reporter.start()
            self._schedule(run, pool, deadline, reporter)
            status = "completed"
            return run.texts[root_id]
        except BaseException as err:
            error = err
            status = _status_for(err)
            raise
        finally:
            if status == "completed":
                pool.shutdown(wait=True)  # every worker is idle: release the threads now
            else:
                pool.abandon()  # never wait for a call stuck in the LLM
            heartbeat.stop()
            message = None if error is None else f"{type(error).__name__}: {error}"
            session._finish(status, message)  # pyright: ignore[reportPrivateUsage]
            reporter.close()
            if registered:
                self._cleanup(session, error)

    def _cleanup(self, session: ProcessingSession, in_flight: BaseException | None) -> None:
        """Remove every trace of the session; never hide a failure to do so."""
        try:
            remove_session_traces(self.db_manager, session.session_id)
        except Exception as err:
            failure = SessionCleanupError(session.session_id, err)
            log.error("%s", failure)
            if in_flight is None:
                raise failure from err
            in_flight.add_note(str(failure))

    def _find_root(self, node_path: str) -> int:
        rows = self.db_manager.run_query(q.find_node_query(), {"node_path": node_path})
        if not rows:
            raise NodeNotFoundError(
                f"no code node has path {node_path!r}; nothing was written. "
                "Check the path (paths are stored exactly as loaded) or load the code first."
            )
        if len(rows) > 1:
            log.warning("several nodes have path %r; documenting the first", node_path)
        return int(rows[0]["node_id"])

    def _initialise(self, run: _Run) -> None:
        """Mark the scope pending and read its structure into memory.

        Two queries (mark, edges); a third lists the scope's ids only when some node has no
        edge inside the scope. The client's cost is per value returned, so this stays small.
        """
        session = run.session
        sid = session.session_id
        params: dict[str, Any] = {"session_id": sid, "root_path": session.root_path}
        init = self.db_manager.run_query(
            q.initialize_processing_session_query(
                sid, scope=session.scope, relationship_type=session.relationship_type
            ),
            params,
        )
        expected = int(init[0]["count"]) if init else 0
        rel = session.relationship_type
        edges = self.db_manager.run_query(q.scope_edges_query(sid, rel), {"session_id": sid})
        children: dict[int, list[int]] = {}
        parents: dict[int, list[int]] = {}
        for row in edges:
            parent = int(row["parent"])
            kids = [int(c) for c in row["children"]]
            children.setdefault(parent, []).extend(kids)
            parents.setdefault(parent, [])
            for kid in kids:
                parents.setdefault(kid, []).append(parent)
                children.setdefault(kid, [])
        if len(children) < expected:  # nodes with no edge in the scope
            rows = self.db_manager.run_query(q.scope_node_ids_query(sid), {"session_id": sid})
            for node_id in rows[0]["node_ids"]:
                children.setdefault(int(node_id), [])
                parents.setdefault(int(node_id), [])
        node_ids = list(children)
        if len(node_ids) != expected:
            log.warning(
                "session %s: %d nodes marked but %d found; was the graph changed meanwhile?",
                sid,
                expected,
                len(node_ids),
            )
        run.children, run.parents = children, parents
        run.unfinished = {i: len(cs) for i, cs in children.items()}
        run.pending = set(node_ids)
        run.text_users = {i: len(ps) for i, ps in parents.items()}
        run.text_users[run.root_id] = run.text_users.get(run.root_id, 0) + 1
        session.nodes = {i: NodeRecord(node_id=i) for i in node_ids}
        _set_depths(session.nodes, children, run.root_id)
        session._set_total(len(node_ids))  # pyright: ignore[reportPrivateUsage]
        if run.root_id not in run.pending:
            raise NodeNotFoundError(
                f"node {session.root_path!r} is not part of the session's scope"
            )

    # ---------------------------------------------------------------------------- scheduler
    def _schedule(
        self, run: _Run, pool: WorkerPool, deadline: float | None, reporter: SessionProgress
    ) -> None:
        """Keep every worker busy: submit ready nodes as soon as a worker frees up."""
        session = run.session
        ready: deque[int] = deque(sorted(i for i, n in run.unfinished.items() if n == 0))
        running: dict[Future[tuple[str, bool]], int] = {}
        # Hysteresis keeps database round trips few and large: while 1.5x max_workers tasks
        # are in flight every worker is busy and has work queued, so results may pile up;
        # below that, claim at once whatever is ready, topping up to 3x the pool size.
        low, high = (self.max_workers * 3 + 1) // 2, self.max_workers * 3
        finished = 0
        while True:
            if run.cancel.is_set():
                raise SessionCancelled(f"session {session.session_id} was cancelled")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(
                    f"session {session.session_id} timed out after {session.timeout:g} s "
                    f"with {finished} of {session.total} nodes documented; its state was "
                    "removed from the graph"
                )
            if ready and len(running) < low:
                batch = [ready.popleft() for _ in range(min(len(ready), high - len(running)))]
                for node_id in self._advance(run, batch):
                    future = pool.submit(self._run_node, run, node_id)
                    running[future] = node_id
                    future.add_done_callback(run.completions.put)
                continue
            if run.unflushed and now - run.last_flush >= FLUSH_INTERVAL_S:
                self._advance(run, [])
            if not running:
                if finished >= session.total or not run.pending:
                    self._advance(run, [])
                    return
                ready.extend(self._break_cycles(run))
                continue
            timeout = None if deadline is None else max(0.0, deadline - now)
            if run.unflushed:
                flush_in = max(0.0, run.last_flush + FLUSH_INTERVAL_S - now)
                timeout = flush_in if timeout is None else min(timeout, flush_in)
            try:  # O(1) per finished node, unlike concurrent.futures.wait over all in flight
                done = [run.completions.get(timeout=timeout)]
            except queue.Empty:
                continue
            while True:
                try:
                    done.append(run.completions.get_nowait())
                except queue.Empty:
                    break
            results: list[tuple[int, str, bool, BaseException | None]] = []
            for future in done:
                if future is None:
                    continue
                node_id = running.pop(future)
                err = future.exception()
                if err is None:
                    text, ok = future.result()
                    results.append((node_id, text, ok, None))
                elif isinstance(err, Exception):
                    results.append((node_id, "", False, err))
                else:
                    raise err
            if results:
                finished += len(results)
                ready.extend(self._finish(run, results))
                reporter.update(len(results))

    def _advance(self, run: _Run, claim: list[int]) -> list[int]:
        """One round trip: write the statuses of finished nodes and claim ``claim``.

        Returns the claimed ids, with what their workers need kept in memory.
        """
        sid = run.session.session_id
        completed, failed = run.unflushed.get("completed", []), run.unflushed.get("failed", [])
        rows = self.db_manager.run_query(
            q.advance_session_query(sid),
            {"session_id": sid, "completed": completed, "failed": failed, "claim": claim},
        )
        run.unflushed.clear()
        run.last_flush = time.monotonic()
        if run.docs:
            self.db_manager.run_query(
                q.save_documentation_query(),
                {"session_id": sid, "node_ids": list(run.docs), "texts": list(run.docs.values())},
            )
            run.docs.clear()
        claimed: list[int] = []
        for row in rows:
            node_id = int(row["node_id"])
            path = str(row["path"])
            labels = tuple(str(label) for label in row["labels"])
            run.info[node_id] = {"name": row["name"], "text": row["text"]}
            run.path_ids.setdefault(path, node_id)
            record = run.session.nodes[node_id]
            record.path, record.labels, record.status = path, labels, "in_progress"
            run.pending.discard(node_id)
            claimed.append(node_id)
        run.session._move("pending", "in_progress", len(claimed))  # pyright: ignore[reportPrivateUsage]
        lost = len(claim) - len(claimed)
        if lost:  # removed from the graph, or the session's state was removed under us
            raise RuntimeError(
                f"session {sid}: {lost} node(s) vanished from the graph or lost their "
                "session state while the session ran (was the session cleaned up by someone "
                "else?)"
            )
        return claimed

    def _break_cycles(self, run: _Run) -> list[int]:
        """Nothing is ready and nothing runs: every pending node waits on a cycle.

        Every cycle among the pending nodes (each strongly connected component with more than
        one node, or a self-call) is cut in one deterministic pass: a depth-first search from
        its lowest id drops every back edge, so the component becomes acyclic and runs in
        parallel; later cycles then never stall the pool again. The source of each dropped
        edge is documented without that child (a node that depends on it anyway) and marked
        ``[CYCLE_DETECTED]``; nodes merely waiting behind a cycle are never marked.
        """
        released: list[int] = []
        for component in _cyclic_components(run.pending, run.children):
            for source, target in _back_edges(component, run.children):
                if source not in run.cycle_nodes:
                    run.cycle_nodes.add(source)
                    run.session.cycles += 1
                run.unfinished[source] -= 1
                run.parents[target].remove(source)  # its finishing no longer counts for source
            released.extend(i for i in component if run.unfinished[i] == 0)
        return sorted(released)

    def _finish(
        self, run: _Run, results: Iterable[tuple[int, str, bool, BaseException | None]]
    ) -> list[int]:
        """Record finished nodes (the graph is told on the next round trip); return parents
        that became ready."""
        session = run.session
        newly_ready: list[int] = []
        for node_id, text, ok, err in results:
            record = session.nodes[node_id]
            if err is not None:  # the unit of work itself failed (not the LLM call)
                ok = False
                text = self._compose(run, node_id, f"{ERROR_MARK} {type(err).__name__}: {err}")
                record.error = f"{type(err).__name__}: {err}"
            if record.finished_at is None:
                record.finished_at = time.perf_counter() - session._t0  # pyright: ignore[reportPrivateUsage]
            status = "completed" if ok else "failed"
            record.status = status
            record.cycle = node_id in run.cycle_nodes
            if not ok:
                if record.error is None:
                    record.error = _first_error_line(text)
                session.recent_errors.append((record.path, record.error))
            run.unflushed.setdefault(status, []).append(node_id)
            session._move("in_progress", status)  # pyright: ignore[reportPrivateUsage]
            run.texts[node_id] = text
            if ok and self.save_documentation:
                run.docs[node_id] = text
            run.info.pop(node_id, None)
            for child in run.children.get(node_id, ()):
                self._release_text(run, child)
            for parent in run.parents.get(node_id, ()):
                if parent in run.pending:
                    run.unfinished[parent] -= 1
                    if run.unfinished[parent] == 0:
                        newly_ready.append(parent)
            if run.text_users.get(node_id, 0) == 0:
                run.texts.pop(node_id, None)
        return newly_ready

    def _release_text(self, run: _Run, node_id: int) -> None:
        left = run.text_users.get(node_id, 0) - 1
        run.text_users[node_id] = left
        if left <= 0:
            run.texts.pop(node_id, None)

    # ------------------------------------------------------------------------------ workers
    def _run_node(self, run: _Run, node_id: int) -> tuple[str, bool]:
        """Worker entry: document one node; ``(text, ok)``."""
        record = run.session.nodes[node_id]
        record.started_at = time.perf_counter() - run.session._t0  # pyright: ignore[reportPrivateUsage]
        record.worker = threading.current_thread().name
        token = _CURRENT.set((run, node_id))
        try:
            text = self._process_single_node(record.path)
        finally:
            _CURRENT.reset(token)
            record.finished_at = time.perf_counter() - run.session._t0  # pyright: ignore[reportPrivateUsage]
        if not isinstance(text, str):
            raise TypeError(f"_process_single_node returned {type(text).__name__}, expected str")
        return text, record.error is None

    def _process_single_node(self, node_path: str) -> str:
        """Document one node from its own content and its children's descriptions.

        Runs on a worker thread inside a session. An LLM failure does not raise: the returned
        text carries ``[ERROR]`` and the message, and the node is marked failed.
        """
        current = _CURRENT.get()
        run, node_id = current if current is not None else self._standalone(node_path)
        if run.session.nodes[node_id].path != node_path:
            node_id = run.path_ids.get(node_path, node_id)
        prompt = self._build_prompt(run, node_id)
        try:
            description = self._provider.get_completion(prompt)
            if not isinstance(description, str):  # a provider object not made by as_llm_provider
                raise TypeError(
                    f"the LLM provider returned {type(description).__name__}, expected str"
                )
            if not description.strip():
                raise ValueError("the LLM provider returned an empty description")
        except Exception as err:
            run.session.nodes[node_id].error = f"{type(err).__name__}: {err}"
            description = f"{ERROR_MARK} {type(err).__name__}: {err}"
        if node_id in run.cycle_nodes:
            description = f"{CYCLE_MARK} {description}"
        return self._compose(run, node_id, description)

    def _standalone(self, node_path: str) -> tuple[_Run, int]:
        """A context for documenting one node outside any session: its own content, no
        children's descriptions, nothing written to the graph."""
        rows = self.db_manager.run_query(q.node_content_query(), {"node_path": node_path})
        if not rows:
            raise NodeNotFoundError(f"no code node has path {node_path!r}")
        row = rows[0]
        node_id = int(row["node_id"])
        session = ProcessingSession(session_id=uuid.uuid4().hex, root_path=node_path)
        labels = tuple(str(label) for label in row["labels"])
        session.nodes = {node_id: NodeRecord(node_id=node_id, path=node_path, labels=labels)}
        run = _Run(session=session, root_id=node_id)
        run.info[node_id] = {"name": row["name"], "text": row["text"]}
        return run, node_id

    def _build_prompt(self, run: _Run, node_id: int) -> str:
        info = run.info.get(node_id, {})
        record = run.session.nodes[node_id]
        lines = [
            "Write concise documentation for this node of a code graph, using its source and "
            "its children's documentation.",
            "## Node",
            f"Path: {record.path}",
            f"Labels: {', '.join(record.labels)}",
        ]
        if info.get("name"):
            lines.append(f"Name: {info['name']}")
        source = info.get("text")
        if isinstance(source, str) and source.strip():
            clipped = source[:MAX_SOURCE_CHARS]
            more = len(source) - len(clipped)
            lines += [
                "## Source",
                "```",
                clipped + (f"\n# ... {more} more characters" if more else ""),
                "```",
            ]
        child_ids = run.children.get(node_id, [])
        if child_ids:
            lines.append("## Children")
            budget = self.max_text_chars
            for child in sorted(child_ids, key=lambda c: run.session.nodes[c].path):
                record = run.session.nodes[child]
                text = run.texts.get(child)
                if text is None:
                    summary = "(not documented yet: part of a cycle)"
                else:
                    summary = " ".join(text.split("\n", 2)[1:2]) or text
                entry = f"- {record.path}: {summary[:500]}"
                if budget - len(entry) < 0:
                    lines.append(f"- ... {len(child_ids)} children in all")
                    break
                budget -= len(entry)
                lines.append(entry)
        return "\n".join(lines)

    def _compose(self, run: _Run, node_id: int, description: str) -> str:
        """``path``, the description, then the children's sections, within ``max_text_chars``."""
        path = run.session.nodes[node_id].path
        head = f"{path}\n{description.strip()}"
        limit = self.max_text_chars
        parts = [head]
        used = len(head)
        child_ids = sorted(run.children.get(node_id, []), key=lambda c: run.session.nodes[c].path)
        for k, child in enumerate(child_ids):
            text = run.texts.get(child)
            if text is None:
                continue
            section = "\n" + "\n".join("  " + line for line in text.splitlines())
            if used + len(section) > limit:
                room = limit - used - 60
                if room > 80:
                    parts.append(section[:room].rsplit("\n", 1)[0])
                parts.append(f"\n  ... {len(child_ids) - k} of {len(child_ids)} children not shown")
                break
            parts.append(section)
            used += len(section)
        return "".join(parts)


def _cyclic_components(pending: set[int], children: dict[int, list[int]]) -> list[list[int]]:
    """Strongly connected components of the pending subgraph that contain a cycle (iterative
    Tarjan, so deep graphs cannot overflow the stack)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for start in sorted(pending):
        if start in index:
            continue
        work: list[tuple[int, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            kids = [c for c in children.get(node, ()) if c in pending]
            if i < len(kids):
                work.append((node, i + 1))
                child = kids[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                members: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                components.append(members)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return [
        members
        for members in components
        if len(members) > 1 or members[0] in children.get(members[0], ())
    ]


def _back_edges(component: list[int], children: dict[int, list[int]]) -> list[tuple[int, int]]:
    """Edges of a depth-first search (from the lowest id, children in id order) that point
    back to a node still on the search path: removing them all leaves no cycle."""
    members = set(component)
    state: dict[int, int] = {}  # 1 on the path, 2 done
    back: list[tuple[int, int]] = []
    for start in sorted(component):
        if start in state:
            continue
        state[start] = 1
        work: list[tuple[int, list[int], int]] = [
            (start, sorted(c for c in children.get(start, ()) if c in members), 0)
        ]
        while work:
            node, kids, i = work.pop()
            if i == len(kids):
                state[node] = 2
                continue
            work.append((node, kids, i + 1))
            child = kids[i]
            seen = state.get(child)
            if seen == 1:
                back.append((node, child))
            elif seen is None:
                state[child] = 1
                grandkids = sorted(c for c in children.get(child, ()) if c in members)
                work.append((child, grandkids, 0))
    return back


def _set_depths(records: dict[int, NodeRecord], children: dict[int, list[int]], root: int) -> None:
    """Breadth-first distance from the root; nodes it does not reach keep ``None``."""
    if root not in records:
        return
    records[root].depth = 0
    frontier = [root]
    while frontier:
        nxt: list[int] = []
        for node in frontier:
            depth = records[node].depth
            for child in children.get(node, ()):
                if records[child].depth is None:
                    records[child].depth = (depth or 0) + 1
                    nxt.append(child)
        frontier = nxt


def _status_for(err: BaseException) -> SessionStatus:
    if isinstance(err, TimeoutError):
        return "timed_out"
    if isinstance(err, SessionCancelled | KeyboardInterrupt):
        return "cancelled"
    return "failed"


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if ERROR_MARK in line:
            return line.split(ERROR_MARK, 1)[1].strip()
    return "failed"


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    return float(timeout)
