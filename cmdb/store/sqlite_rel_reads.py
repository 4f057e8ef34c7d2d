"""Relationships by id with sightings and provenance on SQLite (``GraphStore.get_rels``), a mixin of ``SqliteStore``.

The batch reader already reads relationships whole (attributes, sightings, the ``rel_prov`` row) for a
plan; this answers the same read on the calling thread's read connection, outside the write lock, so
what ``cmdb rel show`` and ``GET /relationships/{id}/provenance`` show is what ingest reconciles.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from cmdb.errors import StoreError

if TYPE_CHECKING:
    from cmdb.store.base import BatchReader, RelState


class SqliteRelReads:
    """Mixin: needs the store's ``_reading`` and ``_batch_reader``."""

    path: str

    if TYPE_CHECKING:
        def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _batch_reader(self, db: sqlite3.Connection) -> BatchReader: ...

    def get_rels(self, ids: Iterable[str]) -> dict[str, RelState]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        with self._reading() as db:
            try:
                return self._batch_reader(db).load_rels_by_id(wanted)
            except sqlite3.Error as exc:
                raise StoreError(f"reading relationships from {self.path} failed: {exc}") from exc
