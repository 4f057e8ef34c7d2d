"""Merges, aliases and conflict resolutions on SQLite (``cmdb.store.merges``), as mixins of the store
and of its batch reader."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.errors import NotFoundError
from cmdb.store.merges import CIMerge, ConflictResolution
from cmdb.store.sqlite_access import begin_write, write_lock

if TYPE_CHECKING:
    from cmdb.store.base import Conflict, RelState

MERGE_TABLES = ("ci_alias", "conflict_resolution")
MERGE_DDL = """
CREATE TABLE IF NOT EXISTS ci_alias(alias TEXT PRIMARY KEY, ci_id TEXT NOT NULL, name_lc TEXT);
CREATE INDEX IF NOT EXISTS ci_alias_ci ON ci_alias(ci_id);
CREATE INDEX IF NOT EXISTS ci_alias_name ON ci_alias(name_lc);
CREATE TABLE IF NOT EXISTS conflict_resolution(
    id TEXT PRIMARY KEY, resolution TEXT NOT NULL, at TEXT NOT NULL, actor TEXT, ci_ids TEXT NOT NULL);
"""


def apply_merges(db: sqlite3.Connection, merges: Iterable[CIMerge]) -> None:
    """The store's part of each merge, last in the batch's transaction (the plan already wrote the
    kept CI and the duplicate's relationships re-created on it)."""
    for m in merges:
        rel_ids = [r[0] for r in db.execute("SELECT id FROM rel WHERE src=? UNION SELECT id FROM rel WHERE dst=?",
                                            (m.dup, m.dup))]
        if rel_ids:
            ids = json.dumps(rel_ids)
            db.execute("DELETE FROM sighting WHERE kind='rel' AND item_id IN (SELECT value FROM json_each(?))", (ids,))
            db.execute("DELETE FROM rel WHERE id IN (SELECT value FROM json_each(?))", (ids,))
        db.execute("DELETE FROM sighting WHERE kind='ci' AND item_id=?", (m.dup,))
        db.execute("UPDATE ci_key SET ci_id=? WHERE ci_id=?", (m.keep, m.dup))
        db.execute("DELETE FROM ci WHERE id=?", (m.dup,))
        db.execute("UPDATE ci_alias SET ci_id=? WHERE ci_id=?", (m.keep, m.dup))
        db.execute("INSERT OR REPLACE INTO ci_alias(alias, ci_id, name_lc) VALUES(?,?,?)",
                   (m.dup, m.keep, (m.dup_name or "").lower() or None))
        if m.resolves is not None:
            db.execute("INSERT OR REPLACE INTO conflict_resolution VALUES(?,?,?,?,?)",
                       (m.resolves, "merged", m.at, m.actor, json.dumps([m.keep, m.dup])))


class SqliteMergeReader:
    """The merge look-ups of the batch reader (mixed into the store's reader)."""

    db: sqlite3.Connection

    if TYPE_CHECKING:
        def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]: ...

    def rels_touching(self, ci_ids: Iterable[str]) -> list[RelState]:
        ids = json.dumps(sorted(set(ci_ids)))
        rel_ids = [r[0] for r in self.db.execute(
            "SELECT id FROM rel WHERE src IN (SELECT value FROM json_each(?))"
            " UNION SELECT id FROM rel WHERE dst IN (SELECT value FROM json_each(?))", (ids, ids))]
        return sorted(self.load_rels_by_id(rel_ids).values(), key=lambda r: r.id)

    def kept_separate(self, ci_ids: Iterable[str]) -> list[list[str]]:
        wanted = set(ci_ids)
        out: list[list[str]] = []
        for (text,) in self.db.execute("SELECT ci_ids FROM conflict_resolution WHERE resolution='keep_separate'"):
            ids = json.loads(text)
            if wanted & set(ids):
                out.append(ids)
        return out


class SqliteMerges:
    """Aliases and conflict resolutions; mixed into ``SqliteStore`` (its ``_db``, ``_lock``, ``_rows``)."""

    _db: sqlite3.Connection
    _lock: Any
    path: str

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...
        def conflicts(self, state: str = "open") -> list[Conflict]: ...

    def resolve_alias(self, ci_id: str) -> str | None:
        rows = self._rows("SELECT ci_id FROM ci_alias WHERE alias=?", (ci_id,))
        return str(rows[0]["ci_id"]) if rows else None

    def aliases_of(self, ci_id: str) -> list[str]:
        return [str(r["alias"]) for r in self._rows("SELECT alias FROM ci_alias WHERE ci_id=? ORDER BY alias",
                                                     (ci_id,))]

    def alias_ids(self, ci_ids: list[str]) -> list[str]:
        """``ci_ids`` and the ids merged into them (for history)."""
        rows = self._rows("SELECT alias FROM ci_alias WHERE ci_id IN (SELECT value FROM json_each(?))",
                          (json.dumps(ci_ids),))
        return [*ci_ids, *(str(r["alias"]) for r in rows)]

    def alias_names(self, name: str) -> list[str]:
        return [str(r["ci_id"]) for r in self._rows("SELECT ci_id FROM ci_alias WHERE name_lc=?", (name.lower(),))]

    def conflict(self, conflict_id: str) -> Conflict | None:
        return next((c for c in self.conflicts("all") if c.id == conflict_id), None)

    def resolve_conflict(self, resolution: ConflictResolution) -> None:
        r = resolution
        with write_lock(self._lock, self.path, "resolving a conflict"):
            begin_write(self._db, self.path, "resolving a conflict")
            try:
                if self._db.execute("SELECT 1 FROM conflict WHERE id=?", (r.id,)).fetchone() is None:
                    raise NotFoundError(f"no identity conflict {r.id!r}; `cmdb conflicts` lists them")
                self._db.execute("INSERT OR REPLACE INTO conflict_resolution VALUES(?,?,?,?,?)",
                                 (r.id, r.resolution, r.at, r.actor, json.dumps(r.ci_ids)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
