"""Pruning old operational records on SQLite (``cmdb.store.retention``), a mixin of ``SqliteStore``.

One ``DELETE`` per kind in one short write transaction. The job, idempotency-key and health-snapshot
tables are created by their first write, so a store that never had one prunes nothing there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.errors import StoreError
from cmdb.store.retention import check_kind
from cmdb.store.sqlite_access import begin_write, write_lock

# kind -> (table, WHERE clause with one "?" per cut-off parameter, how many parameters)
_WHERE: dict[str, tuple[str, str, int]] = {
    "jobs": ("job", "(state IN ('finished', 'failed') AND finished_at < ?)"
                    " OR (state = 'running' AND heartbeat_at < ?)", 2),
    "idempotency_keys": ("idempotency_key", "created_at < ?", 1),
    "outbox": ("outbox", "state IN ('sent', 'dead') AND next_attempt_at < ?", 1),
    "health_snapshots": ("health_snapshot", "at < ?", 1),
    "discovery_runs": ("discovery_run", "json_extract(data, '$.ended_at') IS NOT NULL"
                                        " AND json_extract(data, '$.ended_at') < ?", 1),
}


class SqliteRetention:
    """Mixin: needs the store's ``_db`` (write connection), ``_lock``, ``_rows`` and ``path``."""

    _db: sqlite3.Connection
    _lock: Any
    path: str

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def prune_records(self, kind: str, before: str, *, dry_run: bool = False) -> int:
        check_kind(kind)
        table, where, n = _WHERE[kind]
        if dry_run:  # a count on the read connection: waits for no writer
            try:
                return int(self._rows(f"SELECT count(*) AS n FROM {table} WHERE {where}", (before,) * n)[0]["n"])
            except StoreError as exc:
                if "no such table" in str(exc):
                    return 0
                raise
        doing = f"pruning {kind} older than {before}"
        with write_lock(self._lock, self.path, doing):
            begin_write(self._db, self.path, doing)
            try:
                count = int(self._db.execute(f"DELETE FROM {table} WHERE {where}", (before,) * n).rowcount)
                self._db.execute("COMMIT")
                return count
            except sqlite3.OperationalError as exc:
                self._db.execute("ROLLBACK")
                if "no such table" in str(exc):
                    return 0
                raise StoreError(f"{doing} in {self.path} failed: {exc}") from exc
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"{doing} in {self.path} failed: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
