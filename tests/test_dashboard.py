"""The session dashboard: live, thread-safe and throttled updates, and a working Stop button."""

from __future__ import annotations

import threading
import time

import pytest

import blarify_lab as bl
from blarify_lab import RecursiveDFSProcessor
from blarify_lab.dashboard import SessionDashboard
from blarify_lab.db import GraphDB

from .helpers import make_tree, no_leftovers, slow_llm, wait_for


def test_dashboard_follows_a_running_session_and_ends_with_its_counts(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 3)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.06), max_workers=4, progress=False)
    handle = proc.start("/root")
    dash = handle.dashboard()
    seen: list[int] = []

    def sample_until_done() -> bool:
        seen.append(dash._bars["completed"].value)  # pyright: ignore[reportPrivateUsage]
        return handle.done()

    assert wait_for(sample_until_done, timeout=30)
    handle.result(10)
    assert wait_for(lambda: dash._bars["completed"].value == 41)  # pyright: ignore[reportPrivateUsage]
    assert dash._bars["pending"].value == 0  # pyright: ignore[reportPrivateUsage]
    assert "completed" in dash._title.value  # pyright: ignore[reportPrivateUsage]
    assert seen == sorted(seen) and len(set(seen)) > 1, "updates arrived while it ran"
    assert dash.stop_button.disabled
    assert "41 completed" in repr(dash)
    dash.close()


def test_updates_are_throttled_whatever_the_node_rate(db_manager: GraphDB) -> None:
    make_tree(db_manager, 40, 10)  # 441 nodes at ~400 a second: about a second in all
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.02), max_workers=8, progress=False)
    handle = proc.start("/root")
    dash = SessionDashboard(handle, refresh_interval=0.2)
    start = time.monotonic()
    handle.result(30)
    running = time.monotonic() - start
    redraws = f"blarify-dashboard-{handle.session_id[:8]}"
    assert wait_for(  # the redraw thread ends with the session; no redraw comes after
        lambda: not any(t.name == redraws for t in threading.enumerate())
    )
    elapsed = time.monotonic() - start
    assert dash.updates <= elapsed / 0.2 + 3, dash.updates
    # the first and the final redraw at least, and at least half the periodic ones due
    assert dash.updates >= 2 + int(running / 0.2) // 2, (dash.updates, running)
    dash.close()


def test_refresh_from_many_threads_is_safe(db_manager: GraphDB) -> None:
    make_tree(db_manager, 5, 2)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.0), progress=False)
    proc.process_node("/root")
    assert proc.last_session is not None
    dash = SessionDashboard(proc.last_session)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(50):
                dash.refresh()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dash.stop_button.disabled, "a finished session cannot be stopped"
    assert dash._numbers["completed"].value.endswith("16 / 16")  # pyright: ignore[reportPrivateUsage]


def test_stop_button_cancels_the_session(db_manager: GraphDB) -> None:
    make_tree(db_manager, 10, 3)
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0.1), max_workers=2, progress=False)
    handle = proc.start("/root")
    dash = handle.dashboard()
    deadline = time.monotonic() + 10
    while handle.session.counts["completed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not dash.stop_button.disabled
    dash.stop_button.click()
    with pytest.raises(bl.SessionCancelled):
        handle.result(10)
    assert handle.session.status == "cancelled"
    deadline = time.monotonic() + 5
    while dash.stop_button.description != "Stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dash.stop_button.description == "Stopped" and dash.stop_button.disabled
    assert "cancelled" in dash._title.value  # pyright: ignore[reportPrivateUsage]
    assert no_leftovers(db_manager)
    dash.close()


def test_dashboard_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="SessionHandle or a ProcessingSession"):
        SessionDashboard("not a session")  # type: ignore[arg-type]
