"""Rebuild the committed blarify fixtures from blarify itself (the PyPI package, 1.3.9).

Run from the repository root with any Python 3.11:

    python tests/blarify_fixtures/build_fixtures.py

It makes a virtual environment of its own (``$BLARIFY_FIXTURES_VENV``, default
``~/.cache/blarify_lab/blarify-1.3.9``; never the project's ``.venv``: blarify pins ``neo4j<6``,
which would downgrade the project's driver), installs ``blarify==1.3.9`` there, and runs itself
again inside it (``--inside``). There it runs blarify's real ``GraphBuilder`` with a recording
database manager of ours in place of blarify's Neo4j/FalkorDB managers: the builder hands it the
node and edge objects (``save_graph``/``create_nodes``/``create_edges``) it would write, and no
database is involved. It writes:

- ``json.json``: the stdlib ``json`` package (copied to a temporary folder), ``only_hierarchy=True``.
- ``calls.json``: ``calls_pkg/`` (a small package of ours with call cycles), without
  ``only_hierarchy``, so blarify runs jedi-language-server (one of its dependencies) for ``CALLS``.
- ``documentation.json``: documentation nodes and ``DESCRIBES`` edges exactly as blarify's
  documentation workflow makes them (its ``DocumentationNode`` and ``RelationshipCreator``), for a
  leaf and a parent of ``json.json``, to check ``tests/blarify_graphs.add_blarify_documentation``.
- ``reader_query.json``: the text of blarify's reader ``get_existing_documentation_for_node_query``
  as the installed package returns it, so that the tests run blarify's own query.

The temporary folder blarify reads appears in ``path`` (``file://`` URIs) and file texts; it is
rewritten to ``/blarify/repo`` so that the fixtures do not depend on the machine. ``node_path``
and ``node_id`` do not contain it (blarify's graph environment is ``/blarify/repo``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BLARIFY_VERSION = "1.3.9"
HERE = Path(__file__).resolve().parent
STABLE_ROOT = "/blarify/repo"
SKIP_NAMES = ["__pycache__"]


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "blarify_lab" / f"blarify-{BLARIFY_VERSION}"
    return Path(os.environ.get("BLARIFY_FIXTURES_VENV", str(default)))


def ensure_venv() -> Path:
    """The venv's python, with blarify installed (created on first use)."""
    root = venv_dir()
    python = root / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('blarify'))"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or probe.stdout.strip() != BLARIFY_VERSION:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"blarify=={BLARIFY_VERSION}"], check=True
        )
    return python


class RecordingDbManager:
    """Stands where blarify's database manager stands; keeps what it is asked to write."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []

    def save_graph(self, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
        self.create_nodes(nodes)
        self.create_edges(edges)

    def create_nodes(self, nodeList: list[dict[str, Any]]) -> None:
        self.nodes.extend(nodeList)

    def create_edges(self, edgesList: list[dict[str, Any]]) -> None:
        self.edges.extend(edgesList)

    def query(self, cypher_query: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _stabilize(value: Any, temp_root: str) -> Any:
    if isinstance(value, str):
        return value.replace(temp_root, STABLE_ROOT)
    if isinstance(value, list):
        return [_stabilize(v, temp_root) for v in value]
    if isinstance(value, dict):
        return {k: _stabilize(v, temp_root) for k, v in value.items()}
    return value


def _fixture(source: str, manager: RecordingDbManager, temp_root: str) -> dict[str, Any]:
    nodes = []
    for obj in manager.nodes:
        entry: dict[str, Any] = {"label": obj["type"], "properties": obj["attributes"]}
        if obj.get("extra_labels"):
            entry["extra_labels"] = obj["extra_labels"]
        nodes.append(entry)
    edges = []
    for obj in manager.edges:
        props = {k: v for k, v in obj.items() if k not in ("sourceId", "targetId", "type")}
        edges.append(
            {
                "type": obj["type"],
                "source": obj["sourceId"],
                "target": obj["targetId"],
                "properties": props,
            }
        )
    nodes.sort(key=lambda n: (n["properties"]["node_path"], n["label"]))
    edges.sort(
        key=lambda e: (
            e["type"],
            e["source"],
            e["target"],
            json.dumps(e["properties"], sort_keys=True),
        )
    )
    data = {"blarify_version": BLARIFY_VERSION, "source": source, "nodes": nodes, "edges": edges}
    return _stabilize(data, temp_root)


def _build(root: Path, *, only_hierarchy: bool) -> RecordingDbManager:
    from blarify.prebuilt.graph_builder import GraphBuilder  # pyright: ignore

    manager = RecordingDbManager()
    builder = GraphBuilder(
        root_path=str(root),
        db_manager=manager,  # pyright: ignore
        only_hierarchy=only_hierarchy,
        names_to_skip=SKIP_NAMES,
    )
    builder.build()
    return manager


def _write(name: str, data: dict[str, Any]) -> None:
    path = HERE / name
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def _documentation(graph: dict[str, Any]) -> dict[str, Any]:
    """Documentation nodes as blarify's bottom-up workflow makes them, for a leaf and a parent."""
    from blarify.graph.graph_environment import GraphEnvironment  # pyright: ignore
    from blarify.graph.node.documentation_node import DocumentationNode  # pyright: ignore
    from blarify.graph.relationship.relationship_creator import (  # pyright: ignore
        RelationshipCreator,
    )

    by_path = {n["properties"]["node_path"]: n for n in graph["nodes"]}
    leaf = by_path["/blarify/repo/json/decoder.py#JSONDecoder.raw_decode"]
    parent = by_path["/blarify/repo/json/decoder.py"]
    # The workflow's environment is the one GraphBuilder built the graph with.
    env = GraphEnvironment("blarify", "repo", STABLE_ROOT)
    # Its child descriptions are the node's hierarchy and CALLS children (children_count).
    followed = {"CONTAINS", "FUNCTION_DEFINITION", "CLASS_DEFINITION", "CALLS"}
    children = len(
        {
            e["target"]
            for e in graph["edges"]
            if e["type"] in followed and e["source"] == parent["properties"]["node_id"]
        }
    )
    made = []
    for node, info_type, extra in (
        (leaf, "leaf_analysis", {}),
        (parent, "parent_analysis", {"children_count": children}),
    ):
        props = node["properties"]
        # Neo4j's labels(n) for a node blarify's Neo4j manager wrote: [KIND, 'NODE'].
        made.append(
            DocumentationNode(
                content=f"blarify's description of {props['name']}",
                info_type=info_type,
                source_type="code",
                source_path=props["path"],
                source_name=props["name"],
                source_id=props["node_id"],
                source_labels=[node["label"], "NODE"],
                graph_environment=env,
                **extra,
            )
        )
    manager = RecordingDbManager()
    manager.create_nodes([d.as_object() for d in made])
    manager.create_edges(RelationshipCreator.create_describes_relationships(made))
    data = _fixture("blarify DocumentationNode for json.json", manager, STABLE_ROOT)
    data["code_nodes"] = [leaf["properties"]["node_id"], parent["properties"]["node_id"]]
    return data


def inside() -> None:
    """Runs in blarify's venv: build every fixture."""
    import blarify.repositories.graph_db_manager.queries as bq  # pyright: ignore

    with tempfile.TemporaryDirectory(prefix="blarify-fixtures-") as tmp:
        temp_root = str(Path(tmp).resolve())
        target = Path(temp_root) / "json"
        shutil.copytree(
            Path(json.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__")
        )
        manager = _build(target, only_hierarchy=True)
        json_fixture = _fixture(f"Python {sys.version.split()[0]} stdlib json", manager, temp_root)
        _write("json.json", json_fixture)

        target = Path(temp_root) / "calls_pkg"
        shutil.copytree(HERE / "calls_pkg", target, ignore=shutil.ignore_patterns("__pycache__"))
        manager = _build(target, only_hierarchy=False)
        _write("calls.json", _fixture("tests/blarify_fixtures/calls_pkg", manager, temp_root))

    _write("documentation.json", _documentation(json_fixture))
    reader = {
        "blarify_version": BLARIFY_VERSION,
        "source": "blarify.repositories.graph_db_manager.queries.get_existing_documentation_for_node_query",
        "query": bq.get_existing_documentation_for_node_query(),
    }
    _write("reader_query.json", reader)


def main() -> None:
    if "--inside" in sys.argv:
        inside()
        return
    python = ensure_venv()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the project's tree must not shadow anything in blarify's venv
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # jedi-language-server
    subprocess.run([str(python), str(Path(__file__).resolve()), "--inside"], check=True, env=env)


if __name__ == "__main__":
    main()
