"""Schema extensions on SQLite (the ``SchemaExtensionStore`` capability as a mixin of ``SqliteStore``).

One small table, part of the store's DDL so that dump, restore and clear carry it like the graph.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.errors import StoreError
from cmdb.store.schema_ext import SchemaExtension
from cmdb.store.sqlite_access import begin_write, write_lock

SCHEMA_EXT_TABLE = "schema_extension"
SCHEMA_EXT_DDL = """
CREATE TABLE IF NOT EXISTS schema_extension(
    name TEXT PRIMARY KEY, seq INTEGER NOT NULL, text TEXT NOT NULL, added_at TEXT NOT NULL, added_by TEXT);
"""


class SqliteSchemaExtensions:
    """Mixin: needs the store's ``_db`` (write connection), ``_lock`` and ``path``."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    path: str

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def schema_extensions(self) -> list[SchemaExtension]:
        rows = self._rows("SELECT name, text, added_at, added_by, seq FROM schema_extension ORDER BY seq")
        return [SchemaExtension(r["name"], r["text"], r["added_at"], r["added_by"], int(r["seq"])) for r in rows]

    def _schema_write(self, doing: str, sql: str, params: tuple[object, ...]) -> int:
        with write_lock(self._lock, self.path, doing):
            begin_write(self._db, self.path, doing)
            try:
                n = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
                return int(n)
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"{doing} in {self.path} failed: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def put_schema_extension(self, ext: SchemaExtension) -> SchemaExtension:
        self._schema_write(
            f"storing schema extension {ext.name!r}",
            "INSERT INTO schema_extension(name, seq, text, added_at, added_by)"
            " VALUES(?, (SELECT coalesce(max(seq), 0) + 1 FROM schema_extension), ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET text=excluded.text, added_at=excluded.added_at,"
            " added_by=excluded.added_by",
            (ext.name, ext.text, ext.added_at, ext.added_by),
        )
        return next(e for e in self.schema_extensions() if e.name == ext.name)

    def remove_schema_extension(self, name: str) -> bool:
        return self._schema_write(f"removing schema extension {name!r}",
                                  "DELETE FROM schema_extension WHERE name=?", (name,)) > 0
