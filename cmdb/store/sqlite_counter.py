"""The write counter on SQLite (``GraphStore.write_counter``), a mixin of ``SqliteStore``.

Every batch appends a run-ledger row and every change of the graph appends history events, so the
last event sequence number and the last run row together move with every batch, in this process or
any other; a clear empties both and a restore refills them. Writes outside the graph (a token's
``last_used``, a discovery run's record) leave it alone, so they do not make caches of the graph
(the API's impact index) rebuild. Two index look-ups on the caller's read connection: no lock, so
asking never waits for a writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

_COUNTER = ("SELECT (SELECT coalesce(max(seq), 0) FROM event) AS events,"
            " (SELECT coalesce(max(rowid), 0) FROM run) AS runs")


class SqliteWriteCounter:
    """Mixin: needs the store's ``_rows`` (a read on the calling thread's connection)."""

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def write_counter(self) -> int:
        row = self._rows(_COUNTER)[0]
        return (int(row["runs"]) << 32) + int(row["events"])
