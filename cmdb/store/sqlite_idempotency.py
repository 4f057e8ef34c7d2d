"""Idempotency keys on SQLite (``cmdb.store.idempotency``), a mixin of ``SqliteStore``.

The key is inserted in the batch's own transaction, so a key exists exactly when its batch was
written. The table is created by the first key written (opening a store stays read-only).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cmdb.errors import CmdbError, StoreError
from cmdb.store.base import BatchReader, ChangeSet
from cmdb.store.idempotency import IdempotencyRecord

IDEMPOTENCY_DDL = """
CREATE TABLE IF NOT EXISTS idempotency_key(
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, run_id TEXT NOT NULL, stats TEXT NOT NULL,
    created_at TEXT NOT NULL)
"""


def _record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(row[0], row[1], row[2], json.loads(row[3]), row[4])


class SqliteIdempotency:
    """Mixin: needs the store's ``_db``, ``_lock``, ``_apply``, ``path`` and the module's ``_Reader``."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    path: str

    if TYPE_CHECKING:
        def _apply(self, cs: ChangeSet) -> None: ...

        def _batch_reader(self, db: sqlite3.Connection) -> BatchReader: ...

        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        try:
            rows = self._rows("SELECT key, fingerprint, run_id, stats, created_at FROM idempotency_key WHERE key=?",
                              (key,))
        except StoreError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return _record(tuple(rows[0])) if rows else None

    def write_batch_once(self, key: str, fingerprint: str, plan: Callable[[BatchReader], ChangeSet],
                         at: str) -> tuple[ChangeSet | None, IdempotencyRecord]:
        db = self._db
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a write transaction on {self.path}: {exc}") from exc
            try:
                db.execute(IDEMPOTENCY_DDL)
                row = db.execute("SELECT key, fingerprint, run_id, stats, created_at FROM idempotency_key"
                                 " WHERE key=?", (key,)).fetchone()
                if row is not None:
                    db.execute("ROLLBACK")
                    return None, _record(row)
                cs = plan(self._batch_reader(db))
                self._apply(cs)
                record = IdempotencyRecord(key, fingerprint, cs.run.run_id, dict(cs.run.stats), at)
                db.execute("INSERT INTO idempotency_key VALUES(?,?,?,?,?)",
                           (key, fingerprint, record.run_id, json.dumps(record.stats, sort_keys=True), at))
                db.execute("COMMIT")
                return cs, record
            except CmdbError:
                db.execute("ROLLBACK")
                raise
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise StoreError(f"writing to {self.path} failed and was rolled back: {exc}") from exc
            except BaseException:
                db.execute("ROLLBACK")
                raise
