"""The write counter on SQLite (``GraphStore.write_counter``), a mixin of ``SqliteStore``.

No table and no write: ``PRAGMA data_version`` changes when another connection (another process,
or another store object on the same file) commits, and the connection's ``total_changes`` counts
this connection's own writes. Together they change with every write, wherever it came from.
"""

from __future__ import annotations

import sqlite3
import threading

from cmdb.errors import StoreError


class SqliteWriteCounter:
    """Mixin: needs the store's ``_db`` (the connection writes go through), ``_lock`` and ``path``."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    path: str

    def write_counter(self) -> int:
        with self._lock:
            try:
                row = self._db.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the write counter of {self.path}: {exc}") from exc
            return (int(row[0]) << 40) + self._db.total_changes
