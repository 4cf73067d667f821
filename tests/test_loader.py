"""load_python_package on a small package made here, on every backend."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import blarify_lab as bl
from blarify_lab.db import GraphDB


@pytest.fixture
def package(tmp_path: Path) -> Path:
    pkg = tmp_path / "shop"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A tiny shop."""\n')
    (pkg / "cart.py").write_text(
        textwrap.dedent(
            '''
            """Shopping carts."""
            from .prices import price_of


            class Cart:
                """A cart of items."""

                def __init__(self) -> None:
                    self.items: list[str] = []

                def total(self) -> float:
                    """Sum of the prices."""
                    return sum(price_of(i) for i in self.items) + self.fee()

                def fee(self) -> float:
                    return 1.0


            def checkout(cart: Cart) -> float:
                return cart.total()
            '''
        )
    )
    (pkg / "prices.py").write_text(
        "def price_of(item: str) -> float:\n    return base(item) * 2\n\n\n"
        "def base(item: str) -> float:\n    return float(len(item))\n"
    )
    (pkg / "sub" / "dup.py").write_text("def base():\n    return 0\n")
    (pkg / "sub" / "broken.py").write_text("def broken(:\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "junk.py").write_text("x = 1\n")
    return pkg


def _edges(db: GraphDB, rel: str) -> set[tuple[str, str]]:
    rows = db.run_query(f"MATCH (a)-[:{rel}]->(b) RETURN a.path AS a, b.path AS b", {})
    return {(r["a"], r["b"]) for r in rows}


def test_loads_hierarchy_with_source_text(db_manager: GraphDB, package: Path) -> None:
    loaded = bl.load_python_package(db_manager, package)
    assert loaded.root_path == "/shop"
    assert loaded.nodes == {"FOLDER": 2, "FILE": 4, "CLASS": 1, "FUNCTION": 7}
    assert loaded.skipped_files == [str(package / "sub" / "broken.py")]
    contains = _edges(db_manager, "CONTAINS")
    assert ("/shop", "/shop/cart.py") in contains
    assert ("/shop", "/shop/sub") in contains
    assert ("/shop/sub", "/shop/sub/dup.py") in contains
    assert ("/shop/cart.py", "/shop/cart.py::Cart") in contains
    assert ("/shop/cart.py::Cart", "/shop/cart.py::Cart.total") in contains
    assert not any("__pycache__" in a or "__pycache__" in b for a, b in contains)
    rows = db_manager.run_query(
        "MATCH (n:FUNCTION {path: '/shop/cart.py::Cart.total'}) "
        "RETURN n.name AS name, n.text AS text, n.start_line AS s, n.end_line AS e",
        {},
    )
    assert rows[0]["name"] == "total"
    assert rows[0]["text"].startswith("def total(self) -> float:")
    assert rows[0]["e"] - rows[0]["s"] == 2


def test_calls_resolved_only_when_unambiguous(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    calls = _edges(db_manager, "CALLS")
    assert ("/shop/cart.py::Cart.total", "/shop/prices.py::price_of") in calls
    assert ("/shop/cart.py::Cart.total", "/shop/cart.py::Cart.fee") in calls
    # `base` is defined twice in the package: not guessed
    assert not any(b.endswith("::base") for _, b in calls)
    # `cart.total()` is a call on another object: not guessed
    assert ("/shop/cart.py::checkout", "/shop/cart.py::Cart.total") not in calls


def test_loaded_package_documents_end_to_end(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    proc = bl.RecursiveDFSProcessor(db_manager, bl.ExtractiveSummarizer(), progress=False)
    text = proc.process_node("/shop")
    assert text.startswith("/shop\nFolder `shop`.")
    assert "Signature: `total(self) -> float`" in text
    assert "A cart of items." in text
    calls = proc.process_node("/shop/cart.py::Cart.total", use_hierarchy=False, scope="subtree")
    assert "/shop/prices.py::price_of" in calls


def test_missing_package_is_a_clear_error(db_manager: GraphDB, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such package"):
        bl.load_python_package(db_manager, tmp_path / "nope")
