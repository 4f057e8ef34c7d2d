"""Stores behind the GraphStore protocol, chosen by URL.

``sqlite:////abs/path/cmdb.db``, ``sqlite:///relative.db`` or a plain path is the embedded default;
``neo4j://user@host:7687`` / ``bolt://...`` select Neo4j, its password read from
``CMDB_NEO4J_PASSWORD`` or the 0600 file named by ``CMDB_NEO4J_PASSWORD_FILE``.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

from cmdb.errors import ConfigError
from cmdb.store.base import GraphStore


def default_store_url() -> str:
    return os.environ.get("CMDB_STORE") or f"sqlite:///{Path(user_data_dir('cmdb')) / 'cmdb.db'}"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite store URL names; None for an in-memory or a server store."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if path in ("", "/", "/:memory:", ":memory:"):
            return None
        return Path(path[1:] if path.startswith("/") else path)
    if "://" not in url and url != ":memory:":
        return Path(url)
    return None


def open_store(url: str | None = None) -> GraphStore:
    """Open the store named by ``url`` (default: ``CMDB_STORE`` or a file in the user's data dir)."""
    url = url or default_store_url()
    if url.startswith("sqlite://"):
        from cmdb.store.sqlite import SqliteStore

        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:
        path = url[len("sqlite://"):]
        if path in ("", "/", "/:memory:", ":memory:"):
            return SqliteStore(":memory:")
        return SqliteStore(path[1:] if path.startswith("/") else path)
    if url.split("://", 1)[0] in ("neo4j", "bolt", "neo4j+s", "bolt+s", "neo4j+ssc", "bolt+ssc"):
        try:
            from cmdb.store.neo4j import Neo4jStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:  # pragma: no cover - the module ships with the package
            raise ConfigError(f"the Neo4j store is not available: {exc}") from exc
        store: GraphStore = Neo4jStore.from_url(url)
        return store
    if "://" not in url:
        from cmdb.store.sqlite import SqliteStore

        return SqliteStore(url)
    raise ConfigError(f"unknown store URL {url!r}; use sqlite:///path/to/file.db or neo4j://user@host:7687")
