"""Session-wide test servers. Neo4j is started here (or taken from CMDB_TEST_NEO4J_URI) once per run."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))


@dataclass
class Neo4jEndpoint:
    uri: str
    user: str
    password: str
    server: object | None = None  # the Neo4jServer when this session started it (for kill/restart tests)


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[Neo4jEndpoint]:
    uri = os.environ.get("CMDB_TEST_NEO4J_URI")
    if uri:
        yield Neo4jEndpoint(uri, os.environ.get("CMDB_TEST_NEO4J_USER", "neo4j"),
                            os.environ.get("CMDB_TEST_NEO4J_PASSWORD", ""))
        return
    from neo4j_server import Neo4jServer  # scripts/neo4j_server.py

    server = Neo4jServer()
    server.start()
    try:
        yield Neo4jEndpoint(server.uri, server.user, server.password, server)
    finally:
        server.close()
