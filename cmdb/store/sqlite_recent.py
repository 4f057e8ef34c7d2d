"""The newest history events near a set of CIs on SQLite (``GraphStore.recent_events``), a mixin of ``SqliteStore``.

An incident asks for the last few changes among the CIs it hurts: 20,000 CIs for a core switch of a
100k-CI estate, with 120,000 events between them in a week. Reading them all and keeping the last
fifty took 1.7 s (``events`` decodes every row). Two plans answer it exactly, each fast where the
other is slow:

1. Walk the newest events of the window (``event_at``, newest first: time, sequence and the two
   ends only), at most ``SCAN_BUDGET`` of them, and keep those of the CIs: a large set finds its
   ``limit`` events within a few hundred rows.
2. If that window holds too few, look the CIs up one by one in ``event_ci``/``event_peer`` (covering,
   time and sequence only) for the events older than the walked window: a small set costs an index
   seek per CI. Only the rows kept are read in full.

Both run on the calling thread's read connection: no lock, never waits for a writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from cmdb.errors import StoreError
from cmdb.store.base import Event

SCAN_BUDGET = 4096
_NEWEST = "ORDER BY at DESC, seq DESC"


def _event(r: sqlite3.Row) -> Event:
    return Event(at=r["at"], kind=r["kind"], source=r["source"], run_id=r["run_id"], ci_id=r["ci_id"],
                 rel_id=r["rel_id"], peer_id=r["peer_id"], attr=r["attr"],
                 old=None if r["old"] is None else json.loads(r["old"]),
                 new=None if r["new"] is None else json.loads(r["new"]), actor=r["actor"], seq=r["seq"])


class SqliteRecentEvents:
    """Mixin: needs the store's ``_rows`` and ``_reading`` (the calling thread's read connection)."""

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

        def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def recent_events(self, ci_ids: Iterable[str], since: str | None = None, until: str | None = None,
                      limit: int = 50) -> list[Event]:
        wanted = set(ci_ids)
        if limit <= 0 or not wanted:
            return []
        lo, hi = since or "", until or "\uffff"
        # 1. The newest events of the window, newest first, at most SCAN_BUDGET of them, kept when of the CIs
        #    (a set look-up here: handing 20,000 ids to SQLite costs more than the walk); stops at the limit.
        seqs: list[int] = []
        walked, edge = 0, None
        with self._reading() as db:
            try:
                for seq, at, ci_id, peer_id in db.execute(
                        f"SELECT seq, at, ci_id, peer_id FROM event INDEXED BY event_at WHERE at >= ? AND at <= ?"
                        f" {_NEWEST} LIMIT {SCAN_BUDGET}", (lo, hi)):
                    walked += 1
                    edge = (at, seq)
                    if ci_id in wanted or peer_id in wanted:
                        seqs.append(seq)
                        if len(seqs) >= limit:
                            break
            except sqlite3.Error as exc:
                raise StoreError(f"reading recent events failed: {exc}") from exc
        if len(seqs) < limit and walked == SCAN_BUDGET and edge is not None:
            # 2. Older than the walked window: per CI, through the covering indexes (time and sequence only).
            want = limit - len(seqs)
            per_ci = ("SELECT e.at, e.seq FROM json_each(?1) j JOIN event e INDEXED BY {index} ON e.{column} = j.value"
                      " AND e.at >= ?2 AND e.at <= ?3 AND (e.at < ?4 OR (e.at = ?4 AND e.seq < ?5))")
            older = self._rows(
                f"SELECT DISTINCT seq FROM ({per_ci.format(index='event_ci', column='ci_id')} UNION ALL"
                f" {per_ci.format(index='event_peer', column='peer_id')} {_NEWEST} LIMIT {2 * want})",
                (json.dumps(sorted(wanted)), lo, hi, *edge))  # an event of two of the CIs comes twice: 2 * want
            seqs += [r["seq"] for r in older]
        rows = self._rows(f"SELECT * FROM event WHERE seq IN (SELECT value FROM json_each(?)) {_NEWEST}"
                          f" LIMIT {int(limit)}", (json.dumps(seqs),))
        return [_event(r) for r in rows]
