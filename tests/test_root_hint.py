"""A root typed as a filesystem path gets the root that loading it made as a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from blarify_lab import NodeNotFoundError, RecursiveDFSProcessor, load_python_package
from blarify_lab.db import GraphDB

from .helpers import slow_llm


def test_a_filesystem_path_as_root_suggests_the_loaded_root(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    package = tmp_path / "src" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def f():\n    return 1\n")
    assert load_python_package(db_manager, package).root_path == "/mypkg"
    proc = RecursiveDFSProcessor(db_manager, slow_llm(0), progress=False)
    for typed in (str(package), f"{package}/"):
        with pytest.raises(NodeNotFoundError, match="did you mean '/mypkg'"):
            proc.process_node(typed)
    with pytest.raises(NodeNotFoundError) as info:
        proc.process_node("/otherpkg")
    assert "did you mean" not in str(info.value)
