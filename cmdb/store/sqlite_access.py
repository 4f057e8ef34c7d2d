"""How ``SqliteStore`` uses its file so that reads never wait for a writer.

* Opening is read-only. The schema is created (in one write transaction) only when the file has
  none yet, so opening a store while another process loads into it neither waits nor fails.
* Reads run on one connection per thread, outside the store's write lock. In WAL mode a reader
  sees the last committed state and never waits for a write transaction, in this process (the API
  serving while a batch is posted) or in another (``cmdb load`` running).
* Writes queue behind each other: across processes on SQLite's busy timeout, inside a process on
  the store's lock, both bounded by ``CMDB_WRITE_TIMEOUT`` seconds (default 300). A write that
  waits longer fails with ``StoreBusyError`` saying what holds the lock and what to do.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cmdb.errors import ConfigError, StoreError

DEFAULT_WRITE_TIMEOUT = 300.0
READ_BUSY_MS = 5000  # a reader only waits while a new WAL file is set up or recovered


class StoreBusyError(StoreError):
    """Another writer held the store's write lock for longer than the write timeout."""


def write_timeout() -> float:
    text = os.environ.get("CMDB_WRITE_TIMEOUT")
    if not text:
        return DEFAULT_WRITE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"CMDB_WRITE_TIMEOUT={text!r} must be a number of seconds (0 or more)")
    return value


def busy_error(path: str, waited: float, doing: str) -> StoreBusyError:
    return StoreBusyError(
        f"{path} is being written by another load, import or discovery run, which held its write lock for more"
        f" than {waited:g} s while this one waited to start {doing}; nothing was written. Run it again when"
        " the other write has finished, or wait longer with CMDB_WRITE_TIMEOUT=<seconds>"
    )


def connect(path: str, *, busy_ms: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")  # persistent: a no-op without any lock once the file is in WAL
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    db.execute("PRAGMA cache_size=-200000")
    return db


_CREATED = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)


def ensure_schema(db: sqlite3.Connection, ddl: str, version: int) -> None:
    """Create what the schema lacks; a store that has every table and index of ``ddl`` is only read.

    Comparing names (one read of ``sqlite_master``) rather than trusting the version row means a
    table or index added to ``ddl`` later is still created in an existing file, once, by the first
    process that opens it after the upgrade."""
    wanted = set(_CREATED.findall(ddl))
    have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    if wanted <= have and db.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone():
        return
    db.executescript(
        f"BEGIN IMMEDIATE;\n{ddl}\nINSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '{int(version)}');"
        "\nCOMMIT;"
    )


def begin_write(db: sqlite3.Connection, path: str, doing: str) -> None:
    """``BEGIN IMMEDIATE``: waits (busy timeout) for another process's write, then fails clearly."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise busy_error(path, write_timeout(), doing) from exc
        raise StoreError(f"cannot start a write transaction on {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"cannot start a write transaction on {path}: {exc}") from exc


@contextmanager
def write_lock(lock: Any, path: str, doing: str) -> Iterator[None]:
    """The store's in-process write lock, waited for at most the write timeout."""
    timeout = write_timeout()
    if not lock.acquire(timeout=timeout if timeout > 0 else -1):
        raise busy_error(path, timeout, doing)
    try:
        yield
    finally:
        lock.release()


class ReadConnections:
    """One read connection per thread (``:memory:`` has one connection, shared under the lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def get(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = connect(self.path, busy_ms=READ_BUSY_MS)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.path} for reading: {exc}") from exc
            self._local.db = db
            with self._guard:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
