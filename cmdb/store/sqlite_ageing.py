"""What ageing adds to the SQLite store: relationship provenance, retired identity keys, closed conflicts.

Relationship provenance lives in its own table (``rel_prov``, one row per relationship that has
attributes) rather than a new column of ``rel``: a store created before it gains the table on
opening (``ensure_schema`` creates missing tables), and its relationships without a row are read
as having no provenance yet (``cmdb.planning.rel_attrs`` seeds one from their attributes).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from cmdb.store.base import AttrValue, ChangeSet, Conflict, RelState
from cmdb.store.sqlite_conflicts import OPEN, apply_conflict_states

AGEING_DDL = """
CREATE TABLE IF NOT EXISTS rel_prov(rel_id TEXT PRIMARY KEY, provenance TEXT NOT NULL);
"""
AGEING_TABLES = ("rel_prov",)

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def dump_rel_provenance(prov: dict[str, dict[str, AttrValue]]) -> str:
    """The CI provenance form: {attr: {source: [value, run_id, set_at]}}."""
    return _dumps({a: {s: [v.value, v.run_id, v.set_at] for s, v in srcs.items()} for a, srcs in prov.items()})


def load_rel_provenance(text: str) -> dict[str, dict[str, AttrValue]]:
    return {a: {s: AttrValue(s, v[0], v[1], v[2]) for s, v in srcs.items()} for a, srcs in json.loads(text).items()}


def apply_retired_keys(db: sqlite3.Connection, cs: ChangeSet) -> None:
    """Before new keys are inserted: a retired key may be given to another CI by the same batch."""
    if cs.keys_retired:
        db.executemany("DELETE FROM ci_key WHERE key=? AND ci_id=?", cs.keys_retired)


def apply_ageing(db: sqlite3.Connection, cs: ChangeSet) -> None:
    """Relationship provenance of new and changed relationships, and the states of conflicts."""
    rows = [(r.id, dump_rel_provenance(r.provenance)) for r in cs.rels_new if r.provenance]
    rows += [(r.id, dump_rel_provenance(r.provenance)) for r in cs.rels_changed if r.provenance]
    if rows:
        db.executemany("INSERT OR REPLACE INTO rel_prov(rel_id, provenance) VALUES(?,?)", rows)
    emptied = [(r.id,) for r in cs.rels_changed if r.provenance is not None and not r.provenance]
    if emptied:
        db.executemany("DELETE FROM rel_prov WHERE rel_id=?", emptied)
    apply_conflict_states(db, cs)  # closed conflicts are kept, with their closure (sqlite_conflicts)


def attach_rel_provenance(db: sqlite3.Connection, rels: list[RelState]) -> None:
    """Provenance onto relationships read for a plan ({} when a relationship has none)."""
    if not rels:
        return
    by_id = {r.id: r for r in rels}
    for r in rels:
        r.provenance = {}
    for rel_id, text in db.execute(
        "SELECT rel_id, provenance FROM rel_prov WHERE rel_id IN (SELECT value FROM json_each(?))",
        (_dumps(list(by_id)),),
    ):
        by_id[rel_id].provenance = load_rel_provenance(text)


class SqliteAgeingReader:
    """The batch reader's look-ups for ageing (run scopes, conflicts by key)."""

    db: sqlite3.Connection

    def run_scopes(self, run_ids: Iterable[str]) -> dict[str, str | None]:
        return {r: s for r, s in self.db.execute(
            "SELECT run_id, scope FROM run WHERE run_id IN (SELECT value FROM json_each(?))",
            (_dumps(list(run_ids)),))}

    def open_conflicts(self, keys: Iterable[str]) -> list[Conflict]:
        wanted = set(keys)
        out: list[Conflict] = []
        rows: Any = self.db.execute("SELECT id, at, source, run_id, item, item_class, keys, ci_ids, attrs FROM conflict"
                                    f" WHERE {OPEN.format(c='conflict')} ORDER BY at, id")
        for cid, at, source, run_id, item, item_class, k, ci_ids, attrs in rows:
            ckeys = json.loads(k)
            if wanted.isdisjoint(ckeys):
                continue
            out.append(Conflict(cid, at, source, run_id, item, item_class, ckeys, json.loads(ci_ids),
                                json.loads(attrs)))
        return out
