"""The contract suite runs unchanged against every store: any difference is a bug in one of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdb.store.base import GraphStore
from cmdb.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    if request.param == "sqlite":
        s: GraphStore = SqliteStore(tmp_path / "contract.db")
    else:
        from cmdb.store.neo4j import Neo4jStore

        ep = request.getfixturevalue("neo4j_server")
        neo = Neo4jStore(ep.uri, ep.user, ep.password)
        neo.clear()
        s = neo
    try:
        yield s
    finally:
        s.close()
