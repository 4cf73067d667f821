"""Loading never destroys documentation silently: a root remembers the directory it came from,
and a load from another directory that would delete documented nodes is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

import blarify_lab as bl
from blarify_lab.cli import main
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.errors import BlarifyLabError, SourceConflictError

from .helpers import graph_fingerprint


def _package(where: Path, files: dict[str, str]) -> Path:
    pkg = where / "json"
    pkg.mkdir(parents=True)
    for name, text in files.items():
        (pkg / name).write_text(text)
    return pkg


@pytest.fixture
def stdlib_json(tmp_path: Path) -> Path:
    return _package(
        tmp_path / "stdlib",
        {
            "__init__.py": '"""JSON."""\nfrom .decoder import loads\n',
            "decoder.py": "def loads(s):\n    return scan(s)\n\n\ndef scan(s):\n    return s\n",
            "encoder.py": "def dumps(o):\n    return str(o)\n",
        },
    )


@pytest.fixture
def other_json(tmp_path: Path) -> Path:
    return _package(tmp_path / "other", {"__init__.py": "def parse(text):\n    return text\n"})


def _document(db: GraphDB, root: str) -> None:
    bl.RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), progress=False).process_node(root)


def _source_dir(db: GraphDB, path: str) -> object:
    rows = db.run_query("MATCH (n {path: $p}) RETURN n.source_dir AS s", {"p": path})
    assert len(rows) == 1
    return rows[0]["s"]


def _documented(db: GraphDB) -> int:
    return int(db.run_query("MATCH (d:DOCUMENTATION) RETURN count(d) AS c", {})[0]["c"])


def test_the_source_directory_is_remembered_on_the_root(
    db_manager: GraphDB, stdlib_json: Path, tmp_path: Path
) -> None:
    loaded = bl.load_python_package(db_manager, stdlib_json)
    assert _source_dir(db_manager, "/json") == str(stdlib_json.resolve())
    assert loaded.source_dir == str(stdlib_json.resolve())
    link = tmp_path / "link"
    link.symlink_to(stdlib_json)
    again = bl.load_python_package(db_manager, link)  # the same tree through a symlink
    assert again.source_dir == str(stdlib_json.resolve())
    assert not again.added and not again.removed


def test_another_tree_of_the_same_name_is_refused_and_nothing_written(
    db_manager: GraphDB, stdlib_json: Path, other_json: Path
) -> None:
    bl.load_python_package(db_manager, stdlib_json)
    _document(db_manager, "/json")
    documented = _documented(db_manager)
    assert documented > 5
    before = graph_fingerprint(db_manager, documentation=True)
    with pytest.raises(SourceConflictError) as caught:
        bl.load_python_package(db_manager, other_json)
    err = caught.value
    assert isinstance(err, BlarifyLabError)
    assert err.recorded_source_dir == str(stdlib_json.resolve())
    assert err.source_dir == str(other_json.resolve())
    assert "/json/decoder.py::loads" in err.documented
    assert err.removed >= len(err.documented) > 3
    message = str(err)
    assert f"{err.removed} node(s)" in message
    assert f"{len(err.documented)} of them documented" in message
    assert "--replace" in message and "replace=True" in message and "--prefix" in message
    assert graph_fingerprint(db_manager, documentation=True) == before

    replaced = bl.load_python_package(db_manager, other_json, replace=True)
    assert "/json/decoder.py::loads" in replaced.removed
    assert _source_dir(db_manager, "/json") == str(other_json.resolve())
    assert _documented(db_manager) < documented
    # the other tree is now the one remembered: reloading it is ordinary
    assert bl.load_python_package(db_manager, other_json).unchanged


def test_reloading_the_same_directory_with_deletions_is_an_ordinary_load(
    db_manager: GraphDB, stdlib_json: Path
) -> None:
    bl.load_python_package(db_manager, stdlib_json)
    _document(db_manager, "/json")
    (stdlib_json / "encoder.py").unlink()
    loaded = bl.load_python_package(db_manager, stdlib_json)
    assert loaded.removed == ["/json/encoder.py", "/json/encoder.py::dumps"]


def test_another_directory_that_removes_nothing_documented_just_loads(
    db_manager: GraphDB, stdlib_json: Path, tmp_path: Path
) -> None:
    bl.load_python_package(db_manager, stdlib_json)  # loaded, never documented
    copy = _package(tmp_path / "copy", {"__init__.py": "def parse(text):\n    return text\n"})
    loaded = bl.load_python_package(db_manager, copy)
    assert "/json/decoder.py" in loaded.removed
    assert _source_dir(db_manager, "/json") == str(copy.resolve())


def test_a_root_loaded_before_the_directory_was_remembered(
    db_manager: GraphDB, stdlib_json: Path
) -> None:
    """Safe, not annoying: an unknown origin is adopted silently unless documented nodes would
    go; then the load is refused once, saying why and how to confirm."""
    bl.load_python_package(db_manager, stdlib_json)
    _document(db_manager, "/json")
    db_manager.run_query("MATCH (n {path: '/json'}) REMOVE n.source_dir", {})
    (stdlib_json / "encoder.py").unlink()
    with pytest.raises(SourceConflictError) as caught:
        bl.load_python_package(db_manager, stdlib_json)
    assert caught.value.recorded_source_dir is None
    assert "no source directory recorded" in str(caught.value)
    assert caught.value.documented == ["/json/encoder.py", "/json/encoder.py::dumps"]
    loaded = bl.load_python_package(db_manager, stdlib_json, replace=True)
    assert loaded.removed == ["/json/encoder.py", "/json/encoder.py::dumps"]
    assert _source_dir(db_manager, "/json") == str(stdlib_json.resolve())

    # without documented deletions the old root is adopted at once
    db_manager.run_query("MATCH (n {path: '/json'}) REMOVE n.source_dir", {})
    decoder = stdlib_json / "decoder.py"
    decoder.write_text(decoder.read_text().replace("return scan(s)", "return scan(s.strip())"))
    changed = bl.load_python_package(db_manager, stdlib_json)
    assert changed.changed and not changed.removed
    assert _source_dir(db_manager, "/json") == str(stdlib_json.resolve())


def test_cli_load_refuses_in_one_line_and_replace_confirms(
    db_manager: GraphDB,
    db_env: dict[str, str],
    stdlib_json: Path,
    other_json: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not isinstance(db_manager, FalkorDBManager):
        pytest.skip("the CLI is pointed at the graph by URI; done on FalkorDB")
    uri = db_env["BLARIFY_LAB_URI"]
    assert main(["load", str(stdlib_json), "--uri", uri]) == 0
    _document(db_manager, "/json")
    capsys.readouterr()
    assert main(["load", str(other_json), "--uri", uri]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "database" not in line]
    assert len(lines) == 1 and lines[0].startswith("blarify-lab: error: not loaded:")
    assert "documented" in lines[0] and "--replace" in lines[0]
    assert "removed" not in captured.out
    assert main(["load", str(other_json), "--uri", uri, "--replace"]) == 0
    assert "removed" in capsys.readouterr().out
