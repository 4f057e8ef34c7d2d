"""Batch plans against a read-only snapshot on SQLite (``GraphStore.plan_read_only``), a mixin of ``SqliteStore``.

A dry run plans a batch with ingest's own planner (``cmdb.dryrun``); here the plan reads through the
very batch reader a write gets, but on the calling thread's read connection inside one read
transaction (a WAL snapshot: every look-up of the plan sees the same store) with ``query_only`` on,
so nothing can be written and no writer waits for the dry run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from cmdb.errors import StoreError

if TYPE_CHECKING:
    from cmdb.store.base import BatchReader, ChangeSet


class SqliteDryPlans:
    """Mixin: needs the store's ``_reading`` and ``_batch_reader``."""

    path: str

    if TYPE_CHECKING:
        def _reading(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _batch_reader(self, db: sqlite3.Connection) -> BatchReader: ...

    def plan_read_only(self, plan: Callable[[BatchReader], ChangeSet]) -> ChangeSet:
        with self._reading() as db:
            try:
                db.execute("PRAGMA query_only=ON")
                db.execute("BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {self.path} for a plan: {exc}") from exc
            try:
                return plan(self._batch_reader(db))
            except sqlite3.Error as exc:
                raise StoreError(f"planning against {self.path} failed: {exc}") from exc
            finally:
                db.execute("ROLLBACK")
                db.execute("PRAGMA query_only=OFF")
