"""The newest history events near a set of CIs on SQLite (``GraphStore.recent_events``), a mixin of ``SqliteStore``.

An incident asks for the last few changes among the CIs it hurts: 20,000 CIs for a core switch of a
100k-CI estate, with 120,000 events between them in a week. Reading them all and keeping the last
fifty took 1.7 s (``events`` decodes every row). Two plans answer it exactly, each fast where the
other is slow:

1. Walk the newest events of the window (``event_at``, newest first) for at most ``SCAN_BUDGET``
   rows and keep those of the CIs: a large set finds its ``limit`` events within a few hundred rows.
2. If that window holds too few, look the CIs up one by one in ``event_ci``/``event_peer`` (covering,
   time and sequence only) for the events older than the walked window, keep the newest, and read
   just those rows: a small set costs an index seek per CI.

Both run on the calling thread's read connection: no lock, never waits for a writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.store.base import Event

SCAN_BUDGET = 4096
_MEMBER = ("(ci_id IN (SELECT value FROM json_each(?1)) OR peer_id IN (SELECT value FROM json_each(?1)))")
_WINDOW = "at >= ?2 AND at <= ?3"
_NEWEST = "ORDER BY at DESC, seq DESC"


def _event(r: sqlite3.Row) -> Event:
    return Event(at=r["at"], kind=r["kind"], source=r["source"], run_id=r["run_id"], ci_id=r["ci_id"],
                 rel_id=r["rel_id"], peer_id=r["peer_id"], attr=r["attr"],
                 old=None if r["old"] is None else json.loads(r["old"]),
                 new=None if r["new"] is None else json.loads(r["new"]), actor=r["actor"], seq=r["seq"])


class SqliteRecentEvents:
    """Mixin: needs the store's ``_rows`` (a read on the calling thread's connection)."""

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def recent_events(self, ci_ids: Iterable[str], since: str | None = None, until: str | None = None,
                      limit: int = 50) -> list[Event]:
        ids = json.dumps(list(set(ci_ids)))
        if limit <= 0 or ids == "[]":
            return []
        lo, hi = since or "", until or "\uffff"
        # 1. The newest SCAN_BUDGET events of the window, those of the CIs among them.
        walked = (f"SELECT * FROM event INDEXED BY event_at WHERE {_WINDOW} {_NEWEST} LIMIT {SCAN_BUDGET}")
        found = self._rows(f"SELECT * FROM ({walked}) WHERE {_MEMBER} {_NEWEST} LIMIT {int(limit)}", (ids, lo, hi))
        if len(found) >= limit:
            return [_event(r) for r in found]
        edge = self._rows(f"SELECT at, seq FROM event INDEXED BY event_at WHERE at >= ? AND at <= ? {_NEWEST}"
                          f" LIMIT 1 OFFSET {SCAN_BUDGET - 1}", (lo, hi))
        if not edge:
            return [_event(r) for r in found]  # the window holds fewer events than the budget: all were walked
        # 2. Older than the walked window: per CI, through the covering indexes, then the rows kept.
        want = limit - len(found)
        per_ci = ("SELECT e.at, e.seq FROM json_each(?1) j JOIN event e INDEXED BY {index} ON e.{column} = j.value"
                  " AND e.at >= ?2 AND e.at <= ?3 AND (e.at < ?4 OR (e.at = ?4 AND e.seq < ?5))")
        seqs = self._rows(
            f"SELECT DISTINCT seq FROM ({per_ci.format(index='event_ci', column='ci_id')} UNION ALL"
            f" {per_ci.format(index='event_peer', column='peer_id')} {_NEWEST} LIMIT {2 * want})",
            (ids, lo, hi, edge[0]["at"], edge[0]["seq"]))  # an event of two of the CIs comes twice: 2 * want
        rest = self._rows(f"SELECT * FROM event WHERE seq IN (SELECT value FROM json_each(?1)) {_NEWEST} LIMIT"
                          f" {int(want)}", (json.dumps([r["seq"] for r in seqs]),))
        return [_event(r) for r in [*found, *rest]]
