"""API tokens on SQLite (the ``TokenStore`` capability as a mixin of ``SqliteStore``).

The table is created by the first token written, so opening a store stays read-only and stores
that never serve the API carry no token table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.errors import BadInputError, StoreError
from cmdb.store.sqlite_access import begin_write, write_lock
from cmdb.store.tokens import TokenRecord

TOKEN_DDL = """
CREATE TABLE IF NOT EXISTS api_token(
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    expires_at TEXT, partitions TEXT, sources TEXT, scopes TEXT, created_by TEXT, last_used TEXT,
    revoked_at TEXT)
"""
_COLUMNS = ("name", "role", "token_hash", "created_at", "expires_at", "partitions", "sources", "scopes",
            "created_by", "last_used", "revoked_at")
_LISTS = ("partitions", "sources", "scopes")


def _record(row: sqlite3.Row) -> TokenRecord:
    values = {c: row[c] for c in _COLUMNS}
    for c in _LISTS:
        values[c] = None if values[c] is None else json.loads(values[c])
    return TokenRecord(**values)


class SqliteTokens:
    """Mixin: needs the store's ``_db`` (write connection), ``_lock``, ``_rows`` and ``path``."""

    _db: sqlite3.Connection
    _lock: Any  # the store's RLock
    path: str

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def _token_rows(self, where: str, params: tuple[Any, ...] = ()) -> list[TokenRecord]:
        try:
            rows = self._rows(f"SELECT * FROM api_token {where}", params)
        except StoreError as exc:
            if "no such table" in str(exc):
                return []
            raise
        return [_record(r) for r in rows]

    def _token_write(self, sql: str, params: tuple[Any, ...], doing: str) -> int:
        with write_lock(self._lock, self.path, doing):
            begin_write(self._db, self.path, doing)
            try:
                self._db.execute(TOKEN_DDL)
                n = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
                return int(n)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add_token(self, record: TokenRecord) -> None:
        values = [getattr(record, c) for c in _COLUMNS]
        for i, c in enumerate(_COLUMNS):
            if c in _LISTS and values[i] is not None:
                values[i] = json.dumps(values[i])
        try:
            self._token_write(
                f"INSERT INTO api_token({', '.join(_COLUMNS)}) VALUES({', '.join('?' * len(_COLUMNS))})",
                tuple(values), f"adding token {record.name!r}",
            )
        except sqlite3.IntegrityError:
            raise BadInputError(
                f"a token named {record.name!r} exists already; choose another name (names stay taken after"
                " revocation, so history keeps meaning one token)"
            ) from None
        except sqlite3.Error as exc:
            raise StoreError(f"adding token {record.name!r} to {self.path} failed: {exc}") from exc

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        found = self._token_rows("WHERE token_hash=?", (token_hash,))
        return found[0] if found else None

    def get_token(self, name: str) -> TokenRecord | None:
        found = self._token_rows("WHERE name=?", (name,))
        return found[0] if found else None

    def tokens(self) -> list[TokenRecord]:
        return self._token_rows("ORDER BY name")

    def revoke_token(self, name: str, at: str) -> bool:
        try:
            return self._token_write(
                "UPDATE api_token SET revoked_at=? WHERE name=? AND revoked_at IS NULL", (at, name),
                f"revoking token {name!r}",
            ) > 0
        except sqlite3.Error as exc:
            raise StoreError(f"revoking token {name!r} in {self.path} failed: {exc}") from exc

    def touch_token(self, name: str, at: str) -> None:
        try:
            self._token_write(
                "UPDATE api_token SET last_used=? WHERE name=? AND (last_used IS NULL OR last_used < ?)",
                (at, name, at), f"recording the use of token {name!r}",
            )
        except sqlite3.Error as exc:
            raise StoreError(f"recording the use of token {name!r} in {self.path} failed: {exc}") from exc
