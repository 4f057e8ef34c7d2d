"""SQLite opening is read-only, reads pass a held write lock, writes wait a bounded time and say so."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from cmdb.store.sqlite_access import StoreBusyError

ONE = {"source": "manual", "cis": [{"class": "Server", "fqdn": "a.example"}]}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    ingest(store, Batch.from_dict(ONE))
    store.close()
    return path


@pytest.fixture
def locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer, as SQLite sees it: a connection holding the write lock."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_opening_and_reading_do_not_wait_for_a_writer(db: Path, locked: sqlite3.Connection,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDB_WRITE_TIMEOUT", "30")
    t0 = time.monotonic()
    store = SqliteStore(db)
    try:
        assert store.search(SearchQuery()).total == 1 and store.tokens() == []
        assert time.monotonic() - t0 < 1.0
    finally:
        store.close()


def test_a_write_waits_its_timeout_then_fails_saying_what_to_do(db: Path, locked: sqlite3.Connection,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDB_WRITE_TIMEOUT", "0.3")
    store = SqliteStore(db)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreBusyError, match="CMDB_WRITE_TIMEOUT") as info:
            ingest(store, Batch.from_dict({**ONE, "cis": [{"class": "Server", "fqdn": "b.example"}]}))
        assert 0.25 < time.monotonic() - t0 < 5
        assert "nothing was written" in str(info.value)
    finally:
        store.close()


def test_a_write_queued_behind_another_lands_when_it_ends(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDB_WRITE_TIMEOUT", "30")
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    store = SqliteStore(db)
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    try:
        ingest(store, Batch.from_dict({**ONE, "cis": [{"class": "Server", "fqdn": "c.example"}]}))
        assert store.search(SearchQuery()).total == 2
    finally:
        store.close()
        other.close()


def test_a_table_missing_from_an_existing_file_is_created_on_open(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE discovery_run")
    conn.close()
    store = SqliteStore(db)
    try:
        assert store.discovery_runs() == []
    finally:
        store.close()
