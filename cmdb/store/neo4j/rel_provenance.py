"""Relationship provenance in dumps and restores of the Neo4j store, a mixin of ``Neo4jStore``.

A relationship with attributes carries ``prov``, each source's value of each attribute as JSON in
the SQLite form (``cmdb.planning.rel_attrs``); batches write it with the relationship
(``writer``). A dump carries it as ``rel_prov`` records, as the SQLite store's table of that name,
so either store restores the other's dump.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cmdb.store.neo4j.layout import BATCH_ROWS
from cmdb.store.neo4j.restore import Neo4jRestore


class Neo4jRelProvenance(Neo4jRestore):
    """``rel_prov`` records out of a dump and back into a restore."""

    _rel_prov_pending: list[list[str]]

    def _dump_extra(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from super()._dump_extra()
        for r in self._stream("MATCH (:CI)-[r]->(:CI) WHERE r.prov IS NOT NULL RETURN r.id AS id, r.prov AS prov"
                              " ORDER BY id"):
            yield "rel_prov", {"rel_id": r["id"], "provenance": r["prov"]}

    def _restore_extra(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, dict[str, Any]]]:
        self._rel_prov_pending = []

        def rest() -> Iterator[tuple[str, dict[str, Any]]]:
            for kind, row in super(Neo4jRelProvenance, self)._restore_extra(records):
                if kind == "rel_prov":
                    self._rel_prov_pending.append([str(row["rel_id"]), str(row["provenance"])])
                else:
                    yield kind, row

        return rest()

    def _after_restore(self) -> None:
        """Provenance onto the relationships, once all are in place (one index seek per type)."""
        super()._after_restore()
        rows, self._rel_prov_pending = self._rel_prov_pending, []
        labels = sorted({self._rel_label(t) for t in self._rel_types} | {"CMDB_OTHER"})
        for i in range(0, len(rows), BATCH_ROWS):
            chunk = rows[i:i + BATCH_ROWS]
            for label in labels:
                self._restore_write(f"UNWIND $rows AS row MATCH ()-[r:{label} {{id: row[0]}}]->()"
                                    f" USING INDEX SEEK r:{label}(id) SET r.prov = row[1]", chunk)
