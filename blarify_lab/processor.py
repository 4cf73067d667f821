"""``RecursiveDFSProcessor``: document a code graph leaves-first, one isolated session per call.

(The user's spec fixes the name; the processor is iterative, not recursive.) The scheduler
keeps the session's structure in memory after one read (``graph.DependencyGraph``), so finding
the next ready node costs nothing; the graph holds each node's state
(``processing_status_<session_id>``), written in batches as nodes are claimed and finished,
one round trip per batch. Workers never wait on each other and never touch the database: they
document one node from what the scheduler hands them.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from . import queries as q
from .asking import Asker, ground, made_doc
from .budget import CallBudget
from .checks import (
    check_money,
    check_path,
    check_scope,
    check_seconds,
    check_timeout,
    check_whole,
)
from .db import GraphDB
from .deadline import query_deadline
from .detection import resolve_schema, root_node, schema_named
from .errors import NodeNotFoundError
from .handles import SessionHandle
from .llm import LLMProvider, as_llm_provider, model_identity
from .measurements import load_latency_model
from .node_call import CallSettings
from .pacing import RateLimiter
from .progress import ProgressCallback, SessionProgress
from .prompt_kinds import PromptSet, RenderedPrompt
from .prompts import (
    CYCLE_MARK,
    DEFAULT_MAX_DESCRIPTION_CHARS,
    DEFAULT_MAX_TEXT_CHARS,
    NodeContent,
)
from .registry import DEFAULT_HEARTBEAT_INTERVAL_S, session_lifecycle
from .retries import DEFAULT_MAX_RETRY_WAIT_S
from .scheduler import Completions, Scheduler, SessionRun
from .schema import GraphSchema
from .session import NodeRecord, ProcessingSession, describe_error, status_for
from .usage import validate_prices
from .workers import WorkerPool

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RecursiveDFSProcessor"]

log = logging.getLogger("blarify_lab")

CLEANUP_TIMEOUT_S = 5.0  # what a timed session's cleanup may take after its deadline


_CURRENT: contextvars.ContextVar[tuple[SessionRun, int] | None] = contextvars.ContextVar(
    "blarify_lab_current_node", default=None
)


class RecursiveDFSProcessor:
    """Documents a code graph leaves-first with an LLM, each call one isolated session.

    ``process_node(path)`` gives every node of the session's scope a description built from
    the node itself and its children's descriptions, and returns the documentation of
    ``path``. All session state is removed when the call ends, however it ends.

    Each kind of node is asked its own questions (``prompt_kinds.KIND_PROMPTS``; override some
    with ``prompts={"FUNCTION": "... {body}", "SYSTEM": "..."}``, or pass
    ``prompt_kinds.GENERIC_PROMPTS``). Every answer's names are checked against the node's
    source and children (``grounding``); ``repair_ungrounded=n`` asks up to ``n`` more times
    with the names that do not exist, keeping the better-grounded answer.
    """

    def __init__(
        self,
        db_manager: GraphDB,
        llm_provider: LLMProvider | Callable[[str], str] | Any,
        max_workers: int = 5,
        timeout: float | None = None,
        *,
        scope: q.Scope = "graph",
        hierarchy_relationship: str | None = None,
        call_relationship: str | None = None,
        schema: GraphSchema | str | None = None,
        save_documentation: bool = True,
        progress: bool | ProgressCallback = True,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        max_description_chars: int = DEFAULT_MAX_DESCRIPTION_CHARS,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = 5,
        prices: Mapping[str, float] | None = None,
        max_cost_usd: float | None = None,
        max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S,
        prompts: Mapping[str, str] | None = None,
        repair_ungrounded: int = 0,
    ) -> None:
        check_whole(max_workers, "max_workers", 1)
        check_whole(repair_ungrounded, "repair_ungrounded", 0)
        self.timeout = check_timeout(timeout)
        self.scope: q.Scope = check_scope(scope)
        self.heartbeat_interval = check_seconds(heartbeat_interval, "heartbeat_interval")
        check_whole(max_text_chars, "max_text_chars", 200)
        check_whole(max_description_chars, "max_description_chars", 100)
        check_whole(max_retries, "max_retries", 0)
        self.max_retry_wait_s = check_seconds(max_retry_wait_s, "max_retry_wait_s")
        RateLimiter(requests_per_minute, tokens_per_minute)  # validates both limits
        self.prices = None if prices is None else validate_prices(prices)
        if max_cost_usd is not None:
            if self.prices is None:
                raise ValueError(
                    "max_cost_usd needs prices={'prompt': usd_per_million, "
                    "'completion': usd_per_million} to know what a call costs"
                )
            check_money(max_cost_usd)
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_retries = max_retries
        self.max_cost_usd = max_cost_usd
        self.db_manager = db_manager
        self.llm_provider = llm_provider
        self.max_workers = max_workers
        # None: the schema's (CONTAINS and CALLS by default; A|B for several types)
        self.hierarchy_relationship = q.optional_relationship_types(hierarchy_relationship)
        self.call_relationship = q.optional_relationship_types(call_relationship)
        self.schema = schema_named(schema)  # None: detected when a session starts
        self._adopted: set[GraphSchema] = set()  # unkeyed documentation carried over for these
        self.save_documentation = save_documentation
        self.progress = progress
        self.max_text_chars = max_text_chars
        self.max_description_chars = max_description_chars
        self.last_session: ProcessingSession | None = None
        self._provider = as_llm_provider(llm_provider)  # TypeError first: not a provider
        self.model = model_identity(llm_provider)  # a stored description's author
        self.prompts = PromptSet(prompts)  # per kind (prompt_kinds.KIND_PROMPTS), overridable
        self.repair_ungrounded = repair_ungrounded
        self._asker = Asker(self._provider, llm_provider, repair_ungrounded)

    @property
    def reuse_identity(self) -> str:
        """What a stored description must have been made with, besides its prompt, to be
        reused: the model's identity (its endpoint and generation settings included) and
        ``max_description_chars``."""
        return f"{self.model} [max_description_chars={self.max_description_chars}]"

    # ------------------------------------------------------------------------------ public
    def process_node(
        self,
        node_path: str,
        use_hierarchy: bool = True,
        *,
        scope: q.Scope | None = None,
        timeout: float | None = None,
        progress: bool | ProgressCallback | None = None,
        force: bool = False,
    ) -> str:
        """Run one session and return the documentation of ``node_path``.

        ``use_hierarchy=True`` follows the hierarchy (``CONTAINS``), ``False`` the call graph
        (``CALLS``). ``scope="graph"`` documents every code node, ``"subtree"`` only what is
        reachable from ``node_path``. Raises ``TimeoutError`` when ``timeout`` seconds pass,
        ``NodeNotFoundError`` when no node has the path; cleans up in every case.

        Each description is stored as it is made (``save_documentation``), and a node whose
        prompt and model are those of its stored documentation is not asked again: a re-run
        pays only for what changed. ``force=True`` asks the LLM about every node again.
        """
        session = self._prepare(node_path, use_hierarchy, scope=scope, timeout=timeout, force=force)
        return self._run(session, progress, threading.Event(), queue.SimpleQueue())

    def start(
        self,
        node_path: str,
        use_hierarchy: bool = True,
        *,
        scope: q.Scope | None = None,
        timeout: float | None = None,
        progress: bool | ProgressCallback | None = None,
        force: bool = False,
    ) -> SessionHandle:
        """Start a session in a background thread and return its handle at once.

        The handle's ``result()`` waits for the documentation, ``cancel()`` stops the session
        and cleans up, ``dashboard()`` shows it live in Jupyter.
        """
        session = self._prepare(node_path, use_hierarchy, scope=scope, timeout=timeout, force=force)
        future: Future[str] = Future()
        cancel = threading.Event()
        completions: Completions = queue.SimpleQueue()

        def main() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                text = self._run(session, progress, cancel, completions)
            except BaseException as err:
                future.set_exception(err)
            else:
                future.set_result(text)

        thread = threading.Thread(
            target=main, name=f"blarify-session-{session.session_id[:8]}", daemon=True
        )
        thread.start()
        return SessionHandle(session, future, cancel, lambda: completions.put(None))

    def estimate(
        self,
        node_path: str,
        use_hierarchy: bool = True,
        *,
        scope: q.Scope | None = None,
        schema: GraphSchema | str | None = None,
    ) -> pd.DataFrame:
        """What ``process_node(node_path, ...)`` would cost and take, with no LLM call and no
        write: one row (``nodes``, ``cached``, ``llm_calls``, ``prompt_tokens``,
        ``completion_tokens``, ``cost_usd``, ``wall_s``, ``completion_tokens_basis``,
        ``wall_s_basis``: ``measured`` or ``assumed``; ``estimate.py``). ``schema``: the
        processor's unless given."""
        from .estimate import estimate_session

        check_path(node_path)
        given = self.schema if schema is None else schema_named(schema)
        schema, root_id = root_node(self.db_manager, node_path, given)
        return estimate_session(
            self.db_manager,
            root_id,
            scope=check_scope(scope or self.scope),
            relationship_type=self._relationship(schema, use_hierarchy),
            schema=schema,
            model=self.reuse_identity,
            reuse=self.save_documentation,
            max_text_chars=self.max_text_chars,
            prices=self.prices,
            prompts=self.prompts,
            max_workers=self.max_workers,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            author=self.model,
        )

    # ----------------------------------------------------------------------- session driver
    def _prepare(
        self,
        node_path: str,
        use_hierarchy: bool,
        *,
        scope: q.Scope | None,
        timeout: float | None,
        force: bool,
    ) -> ProcessingSession:
        """Validate the request and create the session object (nothing is written yet)."""
        check_path(node_path)
        session = ProcessingSession(
            session_id=uuid.uuid4().hex,
            root_path=node_path,
            scope=check_scope(scope or self.scope),
            relationship_type=(
                (self.hierarchy_relationship or "CONTAINS")
                if use_hierarchy
                else (self.call_relationship or "CALLS")
            ),  # until the schema is known (when the session starts)
            use_hierarchy=bool(use_hierarchy),
            max_workers=self.max_workers,
            timeout=self.timeout if timeout is None else check_timeout(timeout),
            force=bool(force),
        )
        self.last_session = session
        return session

    def _run(
        self,
        session: ProcessingSession,
        progress: bool | ProgressCallback | None,
        cancel: threading.Event,
        completions: Completions,
    ) -> str:
        """The whole session: find the root, register, schedule, clean up (in every case)."""
        deadline = None if session.timeout is None else time.monotonic() + session.timeout
        with query_deadline(deadline):  # no query outlives the session by more than a grace
            return self._run_within(session, progress, cancel, completions, deadline)

    def _run_within(
        self,
        session: ProcessingSession,
        progress: bool | ProgressCallback | None,
        cancel: threading.Event,
        completions: Completions,
        deadline: float | None,
    ) -> str:
        try:
            schema, root_id = self._find_root(session.root_path)
            session.schema, session.tenant = schema.name, schema.tenant_label
            session.relationship_type = self._relationship(schema, session.use_hierarchy)
        except BaseException as err:
            session.end(status_for(err), describe_error(err))
            raise
        run = SessionRun(session=session, root_id=root_id, cancel=cancel, completions=completions)
        run.schema, run.adopt = schema, schema not in self._adopted
        run.reuse = self.save_documentation and not session.force
        run.deadline = deadline
        run.limiter = RateLimiter(self.requests_per_minute, self.tokens_per_minute, cancel=cancel)
        if self.max_cost_usd is not None:
            run.budget = CallBudget(self.max_cost_usd)
        mode = self.progress if progress is None else progress
        with session_lifecycle(
            self.db_manager,
            session,
            heartbeat_interval=self.heartbeat_interval,
            cleanup_timeout=None if deadline is None else CLEANUP_TIMEOUT_S,
        ):
            scheduler = Scheduler(
                self.db_manager,
                run,
                max_workers=self.max_workers,
                work=self._run_node,
                max_text_chars=self.max_text_chars,
                save_documentation=self.save_documentation,
                budget_usd=self.max_cost_usd,
                latency=load_latency_model(self.db_manager, self.model),  # weighs the chains
            )
            scheduler.initialise()
            with SessionProgress(session, mode) as reporter:
                try:
                    with WorkerPool(self.max_workers, name=f"blarify-{session.id[:8]}") as pool:
                        reporter.start()
                        scheduler.schedule(pool, deadline, reporter)
                except BaseException as err:
                    session.end(status_for(err), describe_error(err))
                    scheduler.store_what_is_done(err)
                    raise
                session.end("completed")
            if run.reuse:
                self._adopted.add(schema)  # once per processor and schema: a scan of documentation
            return run.texts[root_id]

    def _relationship(self, schema: GraphSchema, use_hierarchy: bool) -> str:
        """The relationship types a session follows: the ones given, else the schema's."""
        if use_hierarchy:
            return self.hierarchy_relationship or schema.hierarchy
        return self.call_relationship or schema.call_relationship

    def _find_root(self, node_path: str) -> tuple[GraphSchema, int]:
        """The graph's schema and the one code node (of its tenant) named ``node_path``."""
        return root_node(self.db_manager, node_path, self.schema)

    def _run_node(self, run: SessionRun, node_id: int) -> tuple[str, bool]:
        """Worker entry: document one node; ``(text, ok)``."""
        run.session.started(node_id, threading.current_thread().name)
        token = _CURRENT.set((run, node_id))
        try:
            text = self._process_single_node(run.session.nodes[node_id].path)
        finally:
            _CURRENT.reset(token)
            run.session.worker_done(node_id)
        if not isinstance(text, str):
            raise TypeError(f"_process_single_node returned {type(text).__name__}, expected str")
        return text, node_id not in run.errors

    def _process_single_node(self, node_path: str) -> str:
        """Document one node from its own content and its children's descriptions.

        Runs on a worker thread inside a session (or alone: the node's own content, nothing
        written). An LLM failure does not raise: the text carries ``[ERROR]`` and the message,
        and the node is marked failed.
        """
        current = _CURRENT.get()
        run, node_id = current if current is not None else self._standalone(node_path)
        if run.session.nodes[node_id].path != node_path:
            node_id = run.path_ids.get(node_path, node_id)
        children = run.children(node_id)
        content = run.content[node_id]
        rendered = self.prompts.render(content, children, max_text_chars=self.max_text_chars)
        made_from = rendered.hash(self.reuse_identity)
        stored = run.stored.get(node_id)
        cached = stored is not None and stored[0] == made_from
        paths = [c.path for c in children]
        if stored is not None and cached:
            description, grounding = stored[1], ground(stored[1], content, paths)
            if node_id in run.unlinked:  # stored under its key, describing no node yet
                run.made[node_id] = made_doc(
                    node_id, description, made_from, self.model, children, grounding=grounding
                )
        else:
            description, truncated, grounding = self._asker.document(
                run, node_id, rendered, content, paths, self._call_settings()
            )
            if node_id not in run.errors:  # ``node_call`` left what the call took in ``made``
                args = (node_id, description, made_from, self.model, children, truncated, grounding)
                run.made[node_id] = made_doc(*args) | run.made.pop(node_id, {})
        if grounding is not None:
            run.session.grounded(node_id, len(grounding.named), grounding.ungrounded)
        run.outcome[node_id] = (description, cached)
        if node_id in run.graph.cycle_sources:
            description = f"{CYCLE_MARK} {description}"
        run.descriptions[node_id] = description
        return run.text(node_id, description, self.max_text_chars, children)

    def _ask(self, run: SessionRun, node_id: int, rendered: RenderedPrompt) -> tuple[str, bool]:
        """The LLM's description of one node and whether it was cut short
        (``node_call.ask_llm``, the system message in its own role)."""
        return self._asker.ask(run, node_id, rendered, self._call_settings())

    def _call_settings(self) -> CallSettings:
        return CallSettings(
            max_retries=self.max_retries,
            max_retry_wait_s=self._max_retry_wait_s(),
            prices=self.prices,
            max_description_chars=self.max_description_chars,
        )

    def _max_retry_wait_s(self) -> float:
        """The processor's ``max_retry_wait_s``, or the provider's when it asks for less."""
        own = getattr(self.llm_provider, "max_retry_wait_s", None)
        if isinstance(own, int | float) and not isinstance(own, bool) and own >= 0:
            return min(self.max_retry_wait_s, float(own))
        return self.max_retry_wait_s

    def _standalone(self, node_path: str) -> tuple[SessionRun, int]:
        """A context for documenting one node outside any session: its own content, no
        children's descriptions, nothing written to the graph."""
        schema = resolve_schema(self.db_manager, self.schema)
        rows = self.db_manager.run_query(
            q.node_content_query(schema), {"node_path": node_path, **schema.params()}
        )
        if not rows:
            raise NodeNotFoundError(f"no code node has path {node_path!r}")
        row = rows[0]
        node_id = int(row["node_id"])
        labels = tuple(str(label) for label in row["labels"])
        session = ProcessingSession(session_id=uuid.uuid4().hex, root_path=node_path)
        session.begin({node_id: NodeRecord(node_id=node_id, path=node_path, labels=labels)})
        run = SessionRun(session, node_id, threading.Event(), queue.SimpleQueue())
        run.content[node_id] = NodeContent(node_path, labels, row["name"], row["text"])
        return run, node_id
