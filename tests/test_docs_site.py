"""The documentation site: it builds with ``--strict``, its tutorials are the notebooks with the
outputs the test suite checked, its API pages come from the docstrings, and two pages look right
in a real browser."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _mkdocs() -> str:
    found = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed in CI: install the docs extra")
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]'")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [_mkdocs(), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_notebook_is_a_page_with_its_checked_outputs(site: Path) -> None:
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = site / "notebooks" / notebook.stem / "index.html"
        assert page.is_file(), f"{notebook.name} is not on the site (add it to mkdocs.yml's nav)"
        html = page.read_text()
        cells = json.loads(notebook.read_text())["cells"]
        texts = [
            "".join(out["text"]).strip()
            for cell in cells
            for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and out.get("name") == "stdout"
        ]
        shown = next((t.splitlines()[0] for t in texts if t and "<" not in t and "&" not in t), "")
        assert shown in html, f"{notebook.name}: a stored output is missing from its page"
        assert "NBVAL_" not in html, "test-suite markers are tags, never code a reader sees"


def test_the_api_reference_comes_from_the_docstrings(site: Path) -> None:
    html = (site / "api" / "index.html").read_text()
    for name in ("RecursiveDFSProcessor", "process_node", "list_sessions", "BlarifyLabError"):
        assert name in html, name


def _screenshots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_screenshots", ROOT / "docs/screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_pages_render_in_chromium(site: Path, tmp_path: Path) -> None:
    shots = _screenshots()
    browser = shots.chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed in CI")
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    taken = shots.take(site, tmp_path, browser)
    assert set(taken) == set(shots.PAGES)
    assert all(png.stat().st_size > 10_000 for png in taken.values())
