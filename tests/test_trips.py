"""The scheduler's round trips on their own thread (``trips.RoundTrips``), on a real database."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

import blarify_lab as bl
import blarify_lab.processor as processor_module
from blarify_lab.db import GraphDB
from blarify_lab.deadline import query_deadline
from blarify_lab.errors import DatabaseUnavailableError, QueryError
from blarify_lab.scheduler import Scheduler, SessionRun
from blarify_lab.trips import RoundTrips

from .helpers import no_leftovers, slow_llm


def test_a_trip_lands_with_its_rows_and_what_was_sent(db_manager: GraphDB) -> None:
    woken: queue.SimpleQueue[str] = queue.SimpleQueue()
    trips = RoundTrips[list[int]](db_manager, lambda: woken.put("landed"), "test-trips")
    try:
        assert not trips.busy and not trips.landed and trips.sent() is None
        trips.send("UNWIND $xs AS x RETURN x * 2 AS y", {"xs": [1, 2, 3]}, [7])
        assert trips.busy and trips.sent() == [7]
        with pytest.raises(RuntimeError, match="already on its way"):
            trips.send("RETURN 1 AS x", {}, [8])
        assert woken.get(timeout=10) == "landed" and trips.landed
        rows, sent = trips.take()
        assert [r["y"] for r in rows] == [2, 4, 6] and sent == [7]
        assert not trips.busy
        with pytest.raises(RuntimeError, match="no round trip"):
            trips.take()
    finally:
        trips.close()


def test_a_failed_trip_raises_where_it_is_taken_and_the_next_one_goes(
    db_manager: GraphDB,
) -> None:
    trips = RoundTrips[str](db_manager, lambda: None, "test-trips")
    try:
        trips.send("RETURN nosuchfunction(1) AS x", {}, "bad")
        with pytest.raises(QueryError):
            trips.take(timeout=10)
        trips.send("RETURN 1 AS x", {}, "good")
        assert trips.take(timeout=10) == ([{"x": 1}], "good")
    finally:
        trips.close()


def test_a_trip_keeps_the_senders_query_deadline(db_manager: GraphDB) -> None:
    """The trip runs in the sender's context: a deadline already passed stops it."""
    if getattr(db_manager, "backend", None) == "neo4j":
        pytest.skip("Neo4j's deadline is the server's transaction timeout")
    trips = RoundTrips[str](db_manager, lambda: None, "test-trips")
    try:
        with query_deadline(time.monotonic() - 10, grace=0):
            trips.send("RETURN 1 AS x", {}, "late")
        with pytest.raises(DatabaseUnavailableError):
            trips.take(timeout=10)
    finally:
        trips.close()


def test_a_trip_sent_before_close_still_runs(db_manager: GraphDB) -> None:
    """A session that ends while a trip is on its way closes the trips at once; the trip still
    runs, even one not yet picked up by the trips' thread, so the final write finds its answer
    instead of a cancelled future."""
    trips = RoundTrips[str](db_manager, lambda: None, "test-trips")
    release = threading.Event()
    trips._pool.submit(release.wait, 10)  # pyright: ignore[reportPrivateUsage]  # the thread busy
    trips.send("UNWIND range(1, 2000) AS x WITH x RETURN sum(x) AS s", {}, "last")
    trips.close()  # the trip is still queued behind the busy thread
    release.set()
    assert trips.take(timeout=10) == ([{"s": 2001000}], "last")


class _CancelWhileAReadAheadWaits(Scheduler):
    """Cancels its session at the worst moment: a trip on its way, parents waiting to be read
    ahead, documentation waiting to be written."""

    def _start_known(self, run: SessionRun, nodes: list[int]) -> list[int]:
        started = super()._start_known(run, nodes)
        if self._due and self._trips is not None and self._trips.busy and run.docs:
            run.cancel.set()
        return started


def test_a_session_ending_mid_trip_stores_every_description_it_finished(
    db_manager: GraphDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last write of an ending session lands the trip on its way, reads nothing ahead and
    writes all the documentation waiting; nothing is left behind, the trips' thread is gone."""
    db_manager.run_query(
        "CREATE (r:FOLDER {path: '/root'}) WITH r UNWIND range(1, 6) AS i "
        "CREATE (r)-[:CONTAINS]->(x:FOLDER {path: '/root/a' + toString(i)}) "
        "WITH x UNWIND range(1, 4) AS j "
        "CREATE (x)-[:CONTAINS]->(y:FILE {path: x.path + '/b' + toString(j), text: 'x = 1'}) "
        "WITH y UNWIND range(1, 3) AS k "
        "CREATE (y)-[:CONTAINS]->(:FUNCTION {path: y.path + '/c' + toString(k), "
        "text: 'def g(): pass'})",
        {},
    )
    monkeypatch.setattr(processor_module, "Scheduler", _CancelWhileAReadAheadWaits)
    send = db_manager.run_query

    def slow_trips(query: str, params: Any = None) -> list[dict[str, Any]]:
        if "$ahead" in query:
            time.sleep(0.02)  # every trip long on its way: the moment comes
        return send(query, params)

    monkeypatch.setattr(db_manager, "run_query", slow_trips)
    proc = bl.RecursiveDFSProcessor(db_manager, slow_llm(0.01), max_workers=4, progress=False)
    with pytest.raises(bl.SessionCancelled):
        proc.process_node("/root")
    session = proc.last_session
    assert session is not None
    done = sum(1 for n in session.nodes.values() if n.status == "completed")
    stored = db_manager.run_query("MATCH (d:DOCUMENTATION) RETURN count(d) AS c", {})[0]["c"]
    assert done > 0 and stored == done
    assert no_leftovers(db_manager)
    assert not [t for t in threading.enumerate() if t.name.startswith("blarify-trips")]
