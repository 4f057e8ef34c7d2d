"""Batch plans against a read-only view on Neo4j (``GraphStore.plan_read_only``), a part of ``Neo4jStore``.

The plan reads through the batch reader a write gets (``TxReader``), in a read transaction: a dry
run (``cmdb.dryrun``) takes no write lock and cannot write. The driver may run the plan again when
it retries a transient failure; a plan is built to be run again.
"""

from __future__ import annotations

from collections.abc import Callable

import neo4j
from neo4j import exceptions as nx

from cmdb.errors import CmdbError
from cmdb.store.base import BatchReader, ChangeSet
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.neo4j.layout import OTHER_REL
from cmdb.store.neo4j.reader import TxReader


class Neo4jDryPlans(Neo4jConnection):
    """``plan_read_only``: a batch plan in a read transaction."""

    def plan_read_only(self, plan: Callable[[BatchReader], ChangeSet]) -> ChangeSet:
        labels = [*self._rel_types, OTHER_REL]

        def work(tx: neo4j.ManagedTransaction) -> ChangeSet:
            return plan(TxReader(tx, labels))

        try:
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                cs: ChangeSet = session.execute_read(work)
                return cs
        except CmdbError:
            raise
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "planning a batch") from exc
