"""The Neo4j store a benchmark measures: the server named by ``CMDB_TEST_NEO4J_URI`` (with
``CMDB_TEST_NEO4J_USER`` / ``CMDB_TEST_NEO4J_PASSWORD``), or one started here with
``scripts/neo4j_server.py`` and removed again when the benchmark ends.

One place for what ``bench/health.py``, ``bench/neo4j_ingest.py`` and ``bench/neo4j_pipeline.py`` each
wrote out: a benchmark says ``with bench_neo4j() as (store, server):`` and measures; ``server`` is the
``Neo4jServer`` started here (its ``pid`` lets a benchmark count the server's CPU), or None when the
store is one the environment named.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cmdb.store.neo4j import Neo4jStore

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@contextmanager
def bench_neo4j(heap: str = "2g", pagecache: str = "1g",
                startup_timeout: float = 180.0) -> Iterator[tuple[Neo4jStore, Any]]:
    """(store, server started here or None); the store is closed and the server removed at the end."""
    uri = os.environ.get("CMDB_TEST_NEO4J_URI")
    server: Any = None
    if uri:
        store = Neo4jStore(uri, os.environ.get("CMDB_TEST_NEO4J_USER", "neo4j"),
                           os.environ.get("CMDB_TEST_NEO4J_PASSWORD", ""))
    else:
        if str(SCRIPTS) not in sys.path:
            sys.path.insert(0, str(SCRIPTS))
        server = importlib.import_module("neo4j_server").Neo4jServer(heap=heap, pagecache=pagecache,
                                                                     startup_timeout=startup_timeout)
        server.start()
        try:
            store = Neo4jStore(server.uri, server.user, server.password)
        except BaseException:
            server.close()
            raise
    try:
        yield store, server
    finally:
        store.close()
        if server is not None:
            server.close()
