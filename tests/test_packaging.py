"""What a user installs: ``python -m build`` makes a wheel and an sdist that ``twine check``
passes, and the wheel installs into a fresh virtual environment and runs."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path = ROOT, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed in CI: install the dev extra")
        pytest.skip(f"{module} is not installed: pip install -e '.[dev]'")


def test_wheel_and_sdist_build_pass_twine_and_install_in_a_fresh_venv(tmp_path: Path) -> None:
    _require("build")
    _require("twine")
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    assert (
        "passed"
        in _run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists).lower()
    )

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", wheels[0], timeout=900)
    out = _run(
        python, "-c",
        "import blarify_lab as bl; db = bl.connect(temporary=True); "
        "print(db.run_query('RETURN 1 AS x')); db.close(); print(bl.__version__)",
        cwd=tmp_path,
    )  # fmt: skip
    assert "[{'x': 1}]" in out
    assert "usage: blarify-lab" in _run(env_dir / "bin" / "blarify-lab", "--help", cwd=tmp_path)
