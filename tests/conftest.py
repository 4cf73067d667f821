"""Fixtures that run every database test on every available backend.

FalkorDB (embedded, one server per test run, a fresh graph per test) always runs. Neo4j runs
through testcontainers when a Docker engine answers, or through NEO4J_URI/NEO4J_USER/
NEO4J_PASSWORD; otherwise its cases are collected and skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from blarify_lab.db import FalkorDBManager, GraphDB, Neo4jManager
from blarify_lab.embedded import EmbeddedFalkorDB

NEO4J_IMAGE = "neo4j:5.26-community"
NEO4J_PASSWORD = "test-password"


@dataclass(frozen=True)
class Neo4jContainerInstance:
    """Where the test Neo4j listens (the seed's name for it)."""

    uri: str
    user: str = "neo4j"
    password: str = NEO4J_PASSWORD


@dataclass(frozen=True)
class FalkorDBInstance:
    host: str
    port: int
    password: str

    @property
    def uri(self) -> str:
        """``falkordb://:PASSWORD@host:port`` (the embedded server asks for its password)."""
        return f"falkordb://:{self.password}@{self.host}:{self.port}"

    def manager(self, graph: str, **kwargs: Any) -> FalkorDBManager:
        """A FalkorDBManager on ``graph`` of this server."""
        return FalkorDBManager(
            host=self.host, port=self.port, graph=graph, password=self.password, **kwargs
        )


@pytest.fixture(scope="session")
def falkordb_server() -> Iterator[FalkorDBInstance]:
    """One embedded FalkorDB server (temporary data directory) for the whole test run."""
    server = EmbeddedFalkorDB.acquire(temporary=True)
    try:
        yield FalkorDBInstance(server.host, server.port, server.password)
    finally:
        server.release()


_neo4j_state: dict[str, Any] = {}


@pytest.fixture(scope="session")
def neo4j_instance() -> Iterator[Neo4jContainerInstance]:
    """A Neo4j server: NEO4J_URI if set, else a testcontainers one, else skip with the reason."""
    uri = os.environ.get("NEO4J_URI")
    if uri:
        yield Neo4jContainerInstance(
            uri=uri,
            user=os.environ.get("NEO4J_USER", "neo4j"),
            password=os.environ.get("NEO4J_PASSWORD", NEO4J_PASSWORD),
        )
        return
    if "skip" in _neo4j_state:
        pytest.skip(_neo4j_state["skip"])
    try:
        from testcontainers.community.neo4j import Neo4jContainer  # pyright: ignore

        container = Neo4jContainer(NEO4J_IMAGE, password=NEO4J_PASSWORD)
        container.start()
    except Exception as err:  # no Docker engine (DockerException) or the image cannot be had
        reason = (
            f"Neo4j not available: no NEO4J_URI set and testcontainers could not start "
            f"{NEO4J_IMAGE} ({type(err).__name__}: {str(err)[:160]}). "
            "Set NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD or run where Docker answers."
        )
        _neo4j_state["skip"] = reason
        pytest.skip(reason)
    try:
        yield Neo4jContainerInstance(uri=container.get_connection_url())
    finally:
        container.stop()


def _falkordb_manager(server: FalkorDBInstance) -> FalkorDBManager:
    return server.manager(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(
    params=[
        pytest.param("falkordb"),
        pytest.param("neo4j", marks=pytest.mark.neo4j_integration),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name of the current test case."""
    return str(request.param)


@pytest.fixture
def db_manager(backend: str, request: pytest.FixtureRequest) -> Iterator[GraphDB]:
    """A connection to an empty graph on the current backend; dropped after the test."""
    if backend == "falkordb":
        server: FalkorDBInstance = request.getfixturevalue("falkordb_server")
        manager = _falkordb_manager(server)
        try:
            yield manager
        finally:
            with server.manager(manager.graph_name) as cleaner:
                cleaner.delete_graph()
            manager.close()
    else:
        inst: Neo4jContainerInstance = request.getfixturevalue("neo4j_instance")
        manager = Neo4jManager(uri=inst.uri, user=inst.user, password=inst.password)
        manager.run_query("MATCH (n) DETACH DELETE n", {})
        try:
            yield manager
        finally:
            with Neo4jManager(uri=inst.uri, user=inst.user, password=inst.password) as cleaner:
                cleaner.run_query("MATCH (n) DETACH DELETE n", {})
            manager.close()


@pytest.fixture
def db_env(backend: str, db_manager: GraphDB, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a subprocess that must reach the same graph as ``db_manager``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "BLARIFY_LAB_"))}
    if isinstance(db_manager, FalkorDBManager):
        server: FalkorDBInstance = request.getfixturevalue("falkordb_server")
        env["BLARIFY_LAB_URI"] = f"{server.uri}/{db_manager.graph_name}"
    else:
        inst: Neo4jContainerInstance = request.getfixturevalue("neo4j_instance")
        env.update(BLARIFY_LAB_URI=inst.uri, NEO4J_USER=inst.user, NEO4J_PASSWORD=inst.password)
    return env
