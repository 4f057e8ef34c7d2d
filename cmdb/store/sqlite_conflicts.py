"""Identity conflicts and their states on SQLite (``cmdb.store.conflicts``), a mixin of ``SqliteStore``.

A conflict row stays when it ends: ``conflict_resolution`` (``sqlite_merge``) says how it was resolved,
``conflict_closure`` (here) when, by which run and why ageing closed it. Its own table rather than new
columns of ``conflict``: a store created before gains it on opening (``ensure_schema``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.store.base import ChangeSet, Conflict
from cmdb.store.conflicts import CLOSURE_FIELDS, check_state, closure_rows

CONFLICT_TABLES = ("conflict_closure",)
CONFLICT_DDL = """
CREATE TABLE IF NOT EXISTS conflict_closure(
    id TEXT PRIMARY KEY, at TEXT NOT NULL, run_id TEXT, actor TEXT, reason TEXT);
"""
OPEN = ("NOT EXISTS (SELECT 1 FROM conflict_resolution x WHERE x.id = {c}.id)"
        " AND NOT EXISTS (SELECT 1 FROM conflict_closure z WHERE z.id = {c}.id)")
"""The WHERE condition of an open conflict, ``{c}`` the conflict table's name or alias."""
_STATE = {"open": "x.id IS NULL AND z.id IS NULL", "closed": "x.id IS NULL AND z.id IS NOT NULL",
          "resolved": "x.id IS NOT NULL", "all": "1=1"}


def apply_conflict_states(db: sqlite3.Connection, cs: ChangeSet) -> None:
    """In a batch's transaction, after its conflicts are written: one recorded again is open again, and
    the ones ageing closed get their closure record."""
    if cs.conflicts:
        db.executemany("DELETE FROM conflict_closure WHERE id=?", [(c.id,) for c in cs.conflicts])
    rows = closure_rows(cs)
    if rows:
        db.executemany(f"INSERT OR REPLACE INTO conflict_closure({', '.join(CLOSURE_FIELDS)}) VALUES(?,?,?,?,?)",
                       [tuple(r[f] for f in CLOSURE_FIELDS) for r in rows])


class SqliteConflicts:
    """``conflicts(state)``; mixed into ``SqliteStore`` (its ``_rows``)."""

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def conflicts(self, state: str = "open") -> list[Conflict]:
        check_state(state)
        rows = self._rows(
            "SELECT c.*, x.resolution, x.at AS resolved_at, x.actor AS resolved_by, z.at AS closed_at,"
            " z.run_id AS closed_run, z.actor AS closed_by, z.reason AS closed_reason FROM conflict c"
            " LEFT JOIN conflict_resolution x ON x.id = c.id LEFT JOIN conflict_closure z ON z.id = c.id"
            f" WHERE {_STATE[state]} ORDER BY c.at, c.id")
        return [
            Conflict(id=r["id"], at=r["at"], source=r["source"], run_id=r["run_id"], item=r["item"],
                     item_class=r["item_class"], keys=json.loads(r["keys"]), ci_ids=json.loads(r["ci_ids"]),
                     attrs=json.loads(r["attrs"]), resolution=r["resolution"], resolved_at=r["resolved_at"],
                     resolved_by=r["resolved_by"], closed_at=r["closed_at"], closed_run=r["closed_run"],
                     closed_by=r["closed_by"], closed_reason=r["closed_reason"])
            for r in rows
        ]
