"""Relationships by id with sightings and provenance on Neo4j (``GraphStore.get_rels``), a part of ``Neo4jStore``.

The read of a batch plan (``TxReader.load_rels_by_id``: one index seek per id and type) run in a read
transaction, so what ``cmdb rel show`` and ``GET /relationships/{id}/provenance`` show is what ingest
reconciles.
"""

from __future__ import annotations

from collections.abc import Iterable

import neo4j
from neo4j import exceptions as nx

from cmdb.store.base import RelState
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.neo4j.layout import OTHER_REL
from cmdb.store.neo4j.reader import TxReader


class Neo4jRelReads(Neo4jConnection):
    """``get_rels``: relationships whole, by id."""

    def get_rels(self, ids: Iterable[str]) -> dict[str, RelState]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        labels = [*self._rel_types, OTHER_REL]

        def work(tx: neo4j.ManagedTransaction) -> dict[str, RelState]:
            return TxReader(tx, labels).load_rels_by_id(wanted)

        try:
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                found: dict[str, RelState] = session.execute_read(work)
                return found
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "reading relationships") from exc
