"""Open pages of the built documentation site in headless Chromium and save what a person sees.

``python docs/screenshots.py [SITE_DIR] [OUT_DIR]`` (defaults: ``site`` and
``docs/screenshots``); ``make docs`` runs it after ``mkdocs build --strict``. Each screenshot is
checked: a page that rendered blank (one colour) is an error, exit 1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAGES = {
    "home.png": "index.html",
    "quickstart-notebook.png": "notebooks/01_quickstart/index.html",
}
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
    "--window-size=1280,1600",
]


def chromium() -> str | None:
    """Debian's ``chromium`` (or ``chromium-browser``), if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def colours(png: Path) -> int:
    """How many distinct colours the screenshot has (a blank page has one)."""
    from matplotlib.image import imread

    pixels = imread(str(png))
    return len({tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::97].tolist()})


def take(site: Path, out: Path, browser: str) -> dict[str, Path]:
    """Screenshot every page of ``PAGES`` from ``site`` into ``out``; raise if one is blank."""
    out.mkdir(parents=True, exist_ok=True)
    shots: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="blarify_lab_docs_") as profile:
        for name, page in PAGES.items():
            target = site / page
            if not target.is_file():
                raise FileNotFoundError(f"{target} is missing: build the site first (make docs)")
            png = out / name
            subprocess.run(
                [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                 target.resolve().as_uri()],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            if not png.is_file() or colours(png) < 8:
                raise RuntimeError(f"{page} rendered blank in Chromium ({png})")
            shots[name] = png
    return shots


def main(argv: list[str]) -> int:
    site = Path(argv[0]) if argv else Path("site")
    out = Path(argv[1]) if len(argv) > 1 else Path("docs/screenshots")
    browser = chromium()
    if browser is None:
        print("docs/screenshots.py: Debian chromium is not installed (apt-get install chromium)")
        return 1
    for name, png in take(site, out, browser).items():
        print(f"{name}: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
