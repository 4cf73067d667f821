"""nbval settings for the example notebooks."""

from __future__ import annotations

from typing import Any


def pytest_collectstart(collector: Any) -> None:
    """tqdm writes progress to stderr, which nbval would compare (nbval#56): skip stderr."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Every notebook cell carries the ``notebook`` marker (``pytest -m "not notebook"``)."""
    import pytest

    for item in items:
        if str(getattr(item, "fspath", "")).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)
