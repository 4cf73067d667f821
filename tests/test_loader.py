"""load_python_package on a small package made here, on every backend."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import Any

import pytest

import blarify_lab as bl
from blarify_lab import queries
from blarify_lab.cli import main
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.loader import PROGRESS_MIN_FILES
from blarify_lab.pysource import _Source  # pyright: ignore[reportPrivateUsage]

from .helpers import QueryRecorder, graph_fingerprint


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


# ------------------------------------------------------------------ incremental, idempotent


def _paths(db: GraphDB) -> list[str]:
    rows = db.run_query(
        "MATCH (n) WHERE n.path IS NOT NULL AND NOT n:DOCUMENTATION RETURN n.path AS p", {}
    )
    return sorted(str(r["p"]) for r in rows)


def _node(db: GraphDB, path: str) -> dict[str, Any]:
    rows = db.run_query(
        "MATCH (n) WHERE n.path = $p RETURN id(n) AS id, properties(n) AS props", {"p": path}
    )
    assert len(rows) == 1, rows
    return rows[0]


def _nodes_by_path(db: GraphDB) -> dict[str, dict[str, Any]]:
    rows = db.run_query(
        "MATCH (n) WHERE n.path IS NOT NULL AND NOT n:DOCUMENTATION "
        "RETURN n.path AS p, id(n) AS id, properties(n) AS props",
        {},
    )
    return {str(r["p"]): {"id": r["id"], **r["props"]} for r in rows}


def _document(db: GraphDB, path: str) -> None:
    db.run_query(
        "MATCH (n {path: $p}) CREATE (d:DOCUMENTATION {description: 'x', about: $p})"
        "-[:DESCRIBES]->(n)",
        {"p": path},
    )


def _docs(db: GraphDB) -> dict[str, list[str]]:
    """DOCUMENTATION nodes by the path they were made for: the paths they still describe."""
    rows = db.run_query(
        "MATCH (d:DOCUMENTATION) OPTIONAL MATCH (d)-[:DESCRIBES]->(n) "
        "RETURN d.about AS about, collect(n.path) AS described",
        {},
    )
    return {str(r["about"]): sorted(r["described"]) for r in rows}


def test_loading_twice_changes_nothing(db_manager: GraphDB, package: Path) -> None:
    first = bl.load_python_package(db_manager, package)
    assert first.added == _paths(db_manager)
    assert (first.changed, first.removed, first.unchanged) == ([], [], [])
    before = graph_fingerprint(db_manager)
    with QueryRecorder(db_manager) as rec:
        second = bl.load_python_package(db_manager, package)
    assert graph_fingerprint(db_manager) == before
    assert rec.queries, "the second load reads the graph"
    assert rec.writes == [], "an unchanged reload sends no query that writes"
    assert (second.added, second.changed, second.removed) == ([], [], [])
    assert second.unchanged == first.added
    assert (second.nodes, second.edges) == (first.nodes, first.edges)
    assert repr(second) == repr(first)


def test_edited_function_is_updated_in_place(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    before = _nodes_by_path(db_manager)
    prices = package / "prices.py"
    prices.write_text(prices.read_text().replace("float(len(item))", "float(len(item) + 1)"))
    with QueryRecorder(db_manager) as rec:
        loaded = bl.load_python_package(db_manager, package)
    # the function and the file that holds it: their text changed, their lines did not
    assert loaded.changed == ["/shop/prices.py", "/shop/prices.py::base"]
    assert (loaded.added, loaded.removed) == ([], [])
    after = _nodes_by_path(db_manager)
    assert after["/shop/prices.py::base"]["text"].endswith("return float(len(item) + 1)")
    assert after["/shop/prices.py::base"]["id"] == before["/shop/prices.py::base"]["id"]
    for p in set(before) - set(loaded.changed):
        assert after[p] == before[p], p
    assert all("DELETE" not in query and "CREATE" not in query for query in rec.writes)


def test_changed_lines_update_line_numbers(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    prices = package / "prices.py"
    prices.write_text("# a new first line\n" + prices.read_text())
    loaded = bl.load_python_package(db_manager, package)
    assert loaded.changed == [
        "/shop/prices.py",
        "/shop/prices.py::base",
        "/shop/prices.py::price_of",
    ]
    props = _node(db_manager, "/shop/prices.py::price_of")["props"]
    assert (props["start_line"], props["end_line"]) == (2, 3)


def test_removed_function_goes_with_its_edges_and_documentation(
    db_manager: GraphDB, package: Path
) -> None:
    bl.load_python_package(db_manager, package)
    _document(db_manager, "/shop/cart.py::Cart.fee")
    _document(db_manager, "/shop/cart.py::checkout")
    _document(db_manager, "/shop/prices.py::price_of")
    assert ("/shop/cart.py::Cart.total", "/shop/cart.py::Cart.fee") in _edges(db_manager, "CALLS")
    cart = package / "cart.py"
    cart.write_text(
        cart.read_text()
        .replace(" + self.fee()", "")
        .replace("    def fee(self) -> float:\n        return 1.0\n", "")
    )
    loaded = bl.load_python_package(db_manager, package)
    assert loaded.removed == ["/shop/cart.py::Cart.fee"]
    assert "/shop/cart.py::Cart.fee" not in _paths(db_manager)
    assert not any("fee" in a or "fee" in b for a, b in _edges(db_manager, "CALLS"))
    assert not any("fee" in a or "fee" in b for a, b in _edges(db_manager, "CONTAINS"))
    # documentation of nodes that stay stays, whether they changed (checkout moved up) or not
    assert _docs(db_manager) == {
        "/shop/cart.py::checkout": ["/shop/cart.py::checkout"],
        "/shop/prices.py::price_of": ["/shop/prices.py::price_of"],
    }
    assert "/shop/cart.py::checkout" in loaded.changed
    assert "/shop/prices.py::price_of" in loaded.unchanged


def test_removed_file_and_folder_go_with_everything_under_them(
    db_manager: GraphDB, package: Path
) -> None:
    bl.load_python_package(db_manager, package)
    _document(db_manager, "/shop/sub/dup.py::base")
    (package / "sub" / "dup.py").unlink()
    (package / "sub" / "broken.py").unlink()
    (package / "sub").rmdir()
    loaded = bl.load_python_package(db_manager, package)
    assert loaded.removed == ["/shop/sub", "/shop/sub/dup.py", "/shop/sub/dup.py::base"]
    assert not any(p.startswith("/shop/sub") for p in _paths(db_manager))
    assert _docs(db_manager) == {}
    assert loaded.skipped_files == []
    # `base` is unique now, so the call to it resolves
    assert ("/shop/prices.py::price_of", "/shop/prices.py::base") in _edges(db_manager, "CALLS")


def test_added_file_is_added_and_contained(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    (package / "sub" / "extra.py").write_text(
        "from ..prices import price_of\n\n\nclass Gift:\n    def wrap(self):\n"
        "        return price_of('paper')\n"
    )
    loaded = bl.load_python_package(db_manager, package)
    assert loaded.added == [
        "/shop/sub/extra.py",
        "/shop/sub/extra.py::Gift",
        "/shop/sub/extra.py::Gift.wrap",
    ]
    assert (loaded.changed, loaded.removed) == ([], [])
    contains = _edges(db_manager, "CONTAINS")
    assert ("/shop/sub", "/shop/sub/extra.py") in contains
    assert ("/shop/sub/extra.py::Gift", "/shop/sub/extra.py::Gift.wrap") in contains
    calls = _edges(db_manager, "CALLS")
    assert ("/shop/sub/extra.py::Gift.wrap", "/shop/prices.py::price_of") in calls
    assert loaded.nodes == {"FOLDER": 2, "FILE": 5, "CLASS": 2, "FUNCTION": 8}


def test_calls_are_recomputed(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    cart = package / "cart.py"
    cart.write_text(
        cart.read_text()
        .replace(" + self.fee()", " + 0.0       ")
        .replace("return cart.total()", "return price_of('x')")
    )
    with QueryRecorder(db_manager) as rec:
        loaded = bl.load_python_package(db_manager, package)
    calls = _edges(db_manager, "CALLS")
    assert ("/shop/cart.py::Cart.total", "/shop/cart.py::Cart.fee") not in calls
    assert ("/shop/cart.py::checkout", "/shop/prices.py::price_of") in calls
    assert ("/shop/cart.py::Cart.total", "/shop/prices.py::price_of") in calls
    assert loaded.edges["CALLS"] == len(calls)
    assert loaded.changed == [  # the class's text holds its methods'
        "/shop/cart.py",
        "/shop/cart.py::Cart",
        "/shop/cart.py::Cart.total",
        "/shop/cart.py::checkout",
    ]
    # four nodes updated, one CALLS edge deleted, one created; nothing else written
    writes = [(query, p) for query, p in rec.calls if query in rec.writes]
    assert [query for query, _ in writes] == [
        queries.update_nodes_query(),
        queries.delete_edges_query("CALLS"),
        queries.create_edges_query("CALLS"),
    ]
    assert len(writes[0][1]["node_ids"]) == 4
    assert [len(p["sources"]) for _, p in writes[1:]] == [1, 1]


def test_label_change_is_removed_and_added(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    _document(db_manager, "/shop/prices.py::base")
    prices = package / "prices.py"
    prices.write_text(
        prices.read_text().replace(
            "def base(item: str) -> float:\n    return float(len(item))\n",
            "class base:\n    pass\n",
        )
    )
    loaded = bl.load_python_package(db_manager, package)
    assert "/shop/prices.py::base" in loaded.removed and "/shop/prices.py::base" in loaded.added
    rows = db_manager.run_query(
        "MATCH (n) WHERE n.path = '/shop/prices.py::base' RETURN labels(n) AS labels", {}
    )
    assert [r["labels"] for r in rows] == [["CLASS"]]
    assert ("/shop/prices.py", "/shop/prices.py::base") in _edges(db_manager, "CONTAINS")
    assert _docs(db_manager) == {}


def test_other_roots_are_left_alone(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package, prefix="/shop2")
    bl.load_python_package(db_manager, package / "prices.py", prefix="/shop.py")
    others = _nodes_by_path(db_manager)
    bl.load_python_package(db_manager, package)
    (package / "prices.py").unlink()
    loaded = bl.load_python_package(db_manager, package)
    assert "/shop/prices.py" in loaded.removed
    after = _nodes_by_path(db_manager)
    assert {p: v for p, v in after.items() if not p.startswith("/shop/") and p != "/shop"} == (
        others
    )


def test_old_duplicates_are_cleaned_up(db_manager: GraphDB, package: Path) -> None:
    """A graph loaded twice by the old, non-idempotent loader converges to one node per path."""
    bl.load_python_package(db_manager, package)
    db_manager.run_query(
        "MATCH (n) WHERE n.path STARTS WITH '/shop/cart.py' "
        "CREATE (m:FUNCTION {path: n.path, name: n.name}) "
        "WITH n, m MATCH (n)-[:CONTAINS]->(c) CREATE (m)-[:CONTAINS]->(c)",
        {},
    )
    db_manager.run_query(
        "MATCH (a {path: '/shop/cart.py::Cart.total'}), (b {path: '/shop/cart.py::Cart.fee'}) "
        "CREATE (a)-[:CALLS]->(b)",
        {},
    )
    bl.load_python_package(db_manager, package)
    paths = _paths(db_manager)
    assert len(paths) == len(set(paths))
    fresh = bl.load_python_package(db_manager, package)
    assert fresh.unchanged == paths
    calls = db_manager.run_query("MATCH (a)-[r:CALLS]->(b) RETURN a.path AS a, b.path AS b", {})
    assert len(calls) == len({(r["a"], r["b"]) for r in calls}) == fresh.edges["CALLS"]


# ----------------------------------------------------------------------------- unique paths


TRICKY = '''
import sys
from typing import overload

try:
    from _speedups import fast
except ImportError:
    def fast(x):
        """Pure Python fallback."""
        return x


if sys.version_info >= (3, 12):
    def compat(x):
        return "new"
else:
    def compat(x):
        return "old"


@overload
def parse(x: int) -> int: ...
@overload
def parse(x: str) -> str: ...
def parse(x):
    """The implementation."""
    def helper(y):
        def inner():
            return y
        return inner()
    return helper(compat(fast(x)))


class Shape:
    def area(self):
        return 0

    if sys.version_info >= (3, 11):
        def area(self):
            def inner():
                return 1
            return inner()

    with open(__file__) as _f:
        def loaded(self):
            return self.area()

    def area(self):
        return 2


def twice():
    def one():
        def lost():
            return 0
        return 1
    def one():
        return 2
    return one()


class twice:  # the class wins: the function and its nested functions are dropped
    pass
'''


def test_paths_are_unique_and_every_node_has_its_parent(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    pkg = tmp_path / "tricky"
    pkg.mkdir()
    (pkg / "mod.py").write_text(TRICKY)
    loaded = bl.load_python_package(db_manager, pkg)
    m = "/tricky/mod.py::"
    expected = [f"{m}{n}" for n in ("Shape", "Shape.area", "Shape.loaded", "compat", "fast",
                                    "parse", "parse.helper", "parse.helper.inner", "twice")]  # fmt: skip
    assert loaded.added == ["/tricky", "/tricky/mod.py", *expected]
    paths = _paths(db_manager)
    assert paths == loaded.added, "no duplicates"
    parents = db_manager.run_query(
        "MATCH (n) WHERE n.path IS NOT NULL AND n.path <> '/tricky' "
        "OPTIONAL MATCH (p)-[:CONTAINS]->(n) RETURN n.path AS path, collect(p.path) AS parents",
        {},
    )
    assert all(len(r["parents"]) == 1 for r in parents), parents
    assert _node(db_manager, f"{m}parse")["props"]["text"].startswith('def parse(x):\n    """The')
    assert _node(db_manager, f"{m}compat")["props"]["text"].endswith('return "old"')
    assert _node(db_manager, f"{m}Shape.area")["props"]["text"].endswith("return 2")
    assert "Pure Python" in _node(db_manager, f"{m}fast")["props"]["text"]
    assert (f"{m}twice", "CLASS") in {
        (r["p"], r["l"][0])
        for r in db_manager.run_query("MATCH (n) RETURN n.path AS p, labels(n) AS l", {})
    }
    calls = _edges(db_manager, "CALLS")
    assert (f"{m}Shape.loaded", f"{m}Shape.area") in calls
    assert (f"{m}parse", f"{m}compat") in calls and (f"{m}parse", f"{m}fast") in calls
    again = bl.load_python_package(db_manager, pkg, progress=False)
    assert again.unchanged == loaded.added


def test_text_slicing_matches_ast_on_non_ascii_source() -> None:
    source = (
        "class Café:\n    def größe(self) -> str:  # ünïcödé\n        return 'ß' * 2\n\n"
        "    async def b(self): return '€'\n"
        "def f(x): return {'π': x}; \n"
        "if True:\r\n    def g(): return 'x\\x0c'\r\n"
    )
    tree = ast.parse(source)
    sliced = _Source(source)
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    assert len(nodes) > 5
    for node in nodes:
        assert sliced.segment(node) == ast.get_source_segment(source, node), ast.dump(node)


# ------------------------------------------------------------------------ roots and reports


def test_a_file_as_root(db_manager: GraphDB, package: Path) -> None:
    prices = package / "prices.py"
    loaded = bl.load_python_package(db_manager, prices)
    assert loaded.root_path == "/prices.py"
    assert loaded.added == ["/prices.py", "/prices.py::base", "/prices.py::price_of"]
    assert loaded.nodes == {"FILE": 1, "FUNCTION": 2}
    assert ("/prices.py::price_of", "/prices.py::base") in _edges(db_manager, "CALLS")
    prices.write_text("def price_of(item: str) -> float:\n    return 2.0\n")
    again = bl.load_python_package(db_manager, prices)
    assert again.removed == ["/prices.py::base"]
    assert again.changed == ["/prices.py", "/prices.py::price_of"]
    assert _paths(db_manager) == ["/prices.py", "/prices.py::price_of"]
    assert _edges(db_manager, "CALLS") == set()


def test_skipped_files_are_reported_with_the_reason(db_manager: GraphDB, package: Path) -> None:
    (package / "latin.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    loaded = bl.load_python_package(db_manager, package)
    broken, latin = str(package / "sub" / "broken.py"), str(package / "latin.py")
    assert loaded.skipped_files == [latin, broken]
    assert loaded.skipped_reasons[latin] == "not UTF-8"
    assert loaded.skipped_reasons[broken].startswith("syntax error: ")
    assert "(line 1)" in loaded.skipped_reasons[broken]
    assert not any("broken" in p or "latin" in p for p in _paths(db_manager))


def test_empty_prefix_is_refused(db_manager: GraphDB, package: Path) -> None:
    with pytest.raises(ValueError, match="invalid prefix"):
        bl.load_python_package(db_manager, package, prefix="/")


def test_progress_bar_on_long_loads(
    db_manager: GraphDB, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bl.load_python_package(db_manager, package)
    assert capsys.readouterr().err == "", "no bar for a few files"
    bl.load_python_package(db_manager, package, progress=True)
    assert "load /shop" in capsys.readouterr().err
    many = package / "many"
    many.mkdir()
    for i in range(PROGRESS_MIN_FILES):
        (many / f"m{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    bl.load_python_package(db_manager, package)
    err = capsys.readouterr().err
    assert "load /shop" in err and "100%" in err
    bl.load_python_package(db_manager, package, progress=False)
    assert capsys.readouterr().err == ""


def test_cli_load_prints_the_diff_and_skipped_files(
    db_manager: GraphDB, db_env: dict[str, str], package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not isinstance(db_manager, FalkorDBManager):
        pytest.skip("the CLI is pointed at the graph by URI; done on FalkorDB")
    uri = db_env["BLARIFY_LAB_URI"]
    assert main(["load", str(package), "--uri", uri]) == 0
    out = capsys.readouterr().out
    assert "LoadedPackage(root_path='/shop'" in out
    assert "14 added, 0 changed, 0 removed, 0 unchanged" in out
    assert f"skipped {package / 'sub' / 'broken.py'}: syntax error" in out
    assert main(["load", str(package), "--uri", uri]) == 0
    assert "0 added, 0 changed, 0 removed, 14 unchanged" in capsys.readouterr().out
    assert main(["load", str(package / "nope"), "--uri", uri]) == 2
    assert main(["load", str(package), "--uri", uri, "--prefix", "/"]) == 2
    assert "invalid prefix" in capsys.readouterr().err


def test_a_file_that_stops_parsing_keeps_its_nodes(db_manager: GraphDB, package: Path) -> None:
    bl.load_python_package(db_manager, package)
    _document(db_manager, "/shop/cart.py::checkout")
    before = graph_fingerprint(db_manager)
    cart = package / "cart.py"
    good = cart.read_text()
    cart.write_text(good.replace("class Cart:", "class Cart("))
    with QueryRecorder(db_manager) as rec:
        loaded = bl.load_python_package(db_manager, package)
    assert str(cart) in loaded.skipped_files
    assert (loaded.added, loaded.changed, loaded.removed) == ([], [], [])
    assert rec.writes == [] and graph_fingerprint(db_manager) == before
    cart.write_text(good)
    again = bl.load_python_package(db_manager, package)
    assert (again.added, again.changed, again.removed) == ([], [], [])
    assert graph_fingerprint(db_manager) == before
