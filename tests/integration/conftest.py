"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cmdb.store.neo4j import Neo4jStore


@pytest.fixture
def neo(neo4j_server: Any) -> Iterator[Neo4jStore]:
    """An empty Neo4j store on the session's test server."""
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    store.clear()
    try:
        yield store
    finally:
        store.close()
