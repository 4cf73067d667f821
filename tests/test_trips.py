"""The scheduler's round trips on their own thread (``trips.RoundTrips``), on a real database."""

from __future__ import annotations

import queue
import time

import pytest

from blarify_lab.db import GraphDB
from blarify_lab.deadline import query_deadline
from blarify_lab.errors import DatabaseUnavailableError, QueryError
from blarify_lab.trips import RoundTrips


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
