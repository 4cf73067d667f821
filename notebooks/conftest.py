"""nbval settings for the example notebooks (``pytest`` runs them with ``--nbval``).

- tqdm writes its progress bar to stderr, whose text changes run to run; nbval compares every
  stream (nbval#56), so stderr is left out of the comparison of every notebook.
- ``--nbval-sanitize-with notebooks/sanitize.cfg`` is read relative to the working directory;
  it is made absolute here so that ``pytest`` also works from another directory.
- The notebooks use a throwaway embedded database (``connect(temporary=True)``), which a
  ``BLARIFY_LAB_URI`` in the environment would override: their kernels start without it.
- Every notebook cell carries the ``notebook`` marker (``pytest -m "not notebook"``).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

URI_ENV_VAR = "BLARIFY_LAB_URI"


def _is_notebook(node: Any) -> bool:
    path = getattr(node, "path", None)
    return isinstance(path, Path) and path.suffix == ".ipynb"


def pytest_collectstart(collector: pytest.Collector) -> None:
    if not _is_notebook(collector) or not hasattr(collector, "skip_compare"):
        return
    skip: tuple[str, ...] = collector.skip_compare  # pyright: ignore[reportAttributeAccessIssue]
    if "stderr" not in skip:
        collector.skip_compare = (*skip, "stderr")  # pyright: ignore[reportAttributeAccessIssue]
    option = collector.config.option
    sanitize = getattr(option, "nbval_sanitize_with", None)
    if sanitize and not Path(sanitize).exists():
        from_root = collector.config.rootpath / sanitize
        if from_root.exists():
            option.nbval_sanitize_with = str(from_root)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """The notebook's kernel starts during the setup of its first cell: hide the URI then."""
    if not _is_notebook(item):
        return (yield)
    saved = os.environ.pop(URI_ENV_VAR, None)
    try:
        return (yield)
    finally:
        if saved is not None:
            os.environ[URI_ENV_VAR] = saved


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_notebook(item):
            item.add_marker(pytest.mark.notebook)
