"""The dashboard as a person sees it: the real ipywidgets page, rendered by headless Chromium.

``ipywidgets.embed`` writes the page; its widget manager script comes from the npm-installed
``@jupyter-widgets/html-manager`` (``tests/widget_render``) instead of a CDN, so this runs
offline. Skipped with a reason locally when Chromium or the manager is missing; fails in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ipywidgets.embed import embed_minimal_html

import blarify_lab as bl

from .helpers import make_tree

MANAGER = (
    Path(__file__).parent / "widget_render/node_modules/@jupyter-widgets/html-manager/dist/embed.js"
).resolve()
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
    "--virtual-time-budget=5000",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    problem = None
    if found is None:
        problem = "Debian chromium is not installed (apt-get install chromium)"
    elif not MANAGER.exists():
        problem = "run `npm ci --prefix tests/widget_render` for the widget manager"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"screenshot test cannot run in CI: {problem}")
        pytest.skip(problem)
    assert found is not None
    return found


def _run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dashboard_screenshot_shows_counts_and_stop_button(
    tmp_path: Path, falkordb_server: Any
) -> None:
    chromium = _chromium()
    db = falkordb_server.manager("screenshot")
    make_tree(db, 12, 4)
    calls = {"n": 0}

    def llm(prompt: str) -> str:
        time.sleep(0.05)
        calls["n"] += 1
        if calls["n"] % 9 == 0:
            raise RuntimeError("LLM quota exceeded")
        return "documented"

    proc = bl.RecursiveDFSProcessor(db, llm, max_workers=3, progress=False)
    handle = proc.start("/root")
    dash = handle.dashboard()
    try:
        while handle.session.counts["failed"] < 2:
            time.sleep(0.02)
        snap = dash.refresh()
        page = tmp_path / "dashboard.html"
        embed_minimal_html(page, views=[dash.widget], requirejs=False, title="dashboard")
    finally:
        handle.cancel()
        dash.close()
        db.delete_graph()
        db.close()
    text = page.read_text()
    text, swapped = re.subn(
        r"https://cdn\.jsdelivr\.net/npm/@jupyter-widgets/html-manager@[^\"']*/dist/embed\.js",
        MANAGER.as_uri(),
        text,
    )
    assert swapped == 1
    page.write_text(text)

    dom = _run_chromium(chromium, tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "jupyter-widgets" in dom and "Stop" in dom
    assert re.search(r"<button[^>]*>.*?Stop", dom, re.S), "the Stop button is rendered"
    for status in ("completed", "failed"):
        assert f"{snap.counts[status]} / {snap.total}" in dom, status
    assert snap.session_id in dom

    png = tmp_path / "dashboard.png"
    _run_chromium(chromium, tmp_path, "--window-size=700,420", f"--screenshot={png}", page.as_uri())
    import matplotlib.image

    pixels = np.asarray(matplotlib.image.imread(png))[:, :, :3]
    assert pixels.std() > 0.05, "the screenshot is not blank"
    green = (np.abs(pixels - np.array([0x2E, 0x7D, 0x32]) / 255).sum(axis=2) < 0.1).sum()
    red = (np.abs(pixels - np.array([0xD3, 0x2F, 0x2F]) / 255).sum(axis=2) < 0.25).sum()
    assert green > 200, "the completed bar is visible"
    assert red > 500, "the red Stop button is visible"
    docs = Path(__file__).parent.parent / "docs"
    if docs.is_dir() and os.environ.get("BLARIFY_LAB_UPDATE_SCREENSHOT"):
        shutil.copy(png, docs / "dashboard.png")
