"""Identity conflicts and their states on Neo4j (``cmdb.store.conflicts``), a part of ``Neo4jStore``.

``(:ConflictClosure {id, at, run_id, actor, reason})`` sits beside its ``(:Conflict)`` once ageing
closed it, as ``(:ConflictResolution)`` does once someone resolved it (``merges``). Closures are
written at the end of each batch's transaction (the writer's program carries their rows), and a
conflict the batch recorded again loses its closure: it is open again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import neo4j

from cmdb.store.base import Conflict
from cmdb.store.conflicts import CLOSURE_FIELDS, check_state
from cmdb.store.neo4j.codecs import load_json
from cmdb.store.neo4j.connection import Neo4jConnection

_CONSTRAINT = ("CREATE CONSTRAINT cmdb_conflict_closure IF NOT EXISTS FOR (z:ConflictClosure) REQUIRE z.id IS UNIQUE")
OPEN = ("NOT EXISTS { MATCH (:ConflictResolution {id: c.id}) } AND NOT EXISTS { MATCH (:ConflictClosure {id: c.id}) }")
"""The WHERE condition of an open ``(c:Conflict)``."""
_STATE = {"open": "x IS NULL AND z IS NULL", "closed": "x IS NULL AND z IS NOT NULL", "resolved": "x IS NOT NULL",
          "all": "true"}


class Neo4jConflicts(Neo4jConnection):
    """``conflicts(state)`` and the closure records: written with batches, dumped and restored."""

    def _extend_schema(self) -> None:
        super()._extend_schema()
        have = {r["name"] for r in self._read("SHOW CONSTRAINTS YIELD name RETURN name")}
        if "cmdb_conflict_closure" not in have:
            self._autocommit(_CONSTRAINT, "creating the conflict closure constraint")

    def _after_batch_write(self, tx: neo4j.ManagedTransaction, prog: Any) -> None:
        super()._after_batch_write(tx, prog)
        if prog.conflicts:
            tx.run("UNWIND $ids AS id MATCH (z:ConflictClosure {id: id}) DELETE z",
                   ids=[c["id"] for c in prog.conflicts]).consume()
        if prog.conflicts_closed:
            tx.run("UNWIND $rows AS row MERGE (z:ConflictClosure {id: row.id}) SET z = row",
                   rows=prog.conflicts_closed).consume()

    def conflicts(self, state: str = "open") -> list[Conflict]:
        check_state(state)
        rows = self._read(
            "MATCH (c:Conflict) OPTIONAL MATCH (x:ConflictResolution {id: c.id})"
            " OPTIONAL MATCH (z:ConflictClosure {id: c.id})"
            f" WITH c, x, z WHERE {_STATE[state]}"
            " RETURN c {.*, resolution: x.resolution, resolved_at: x.at, resolved_by: x.actor, closed_at: z.at,"
            " closed_run: z.run_id, closed_by: z.actor, closed_reason: z.reason} AS c ORDER BY c.at, c.id")
        return [
            Conflict(id=c["id"], at=c["at"], source=c["source"], run_id=c["run_id"], item=c["item"],
                     item_class=c["item_class"], keys=load_json(c["keys"]), ci_ids=load_json(c["ci_ids"]),
                     attrs=load_json(c["attrs"]), resolution=c["resolution"], resolved_at=c["resolved_at"],
                     resolved_by=c["resolved_by"], closed_at=c["closed_at"], closed_run=c["closed_run"],
                     closed_by=c["closed_by"], closed_reason=c["closed_reason"])
            for c in (r["c"] for r in rows)
        ]

    def _dump_extra(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from super()._dump_extra()
        for r in self._read("MATCH (z:ConflictClosure) RETURN z {.*} AS z ORDER BY z.id"):
            yield "conflict_closure", {f: r["z"].get(f) for f in CLOSURE_FIELDS}

    def _restore_extra(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, dict[str, Any]]]:
        return self._restore_closures(super()._restore_extra(records))

    def _restore_closures(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        for kind, row in records:
            if kind != "conflict_closure":
                yield kind, row
                continue
            rows.append({k: v for k, v in row.items() if v is not None})
        if rows:
            self._restore_write("UNWIND $rows AS row CREATE (z:ConflictClosure) SET z = row", rows)
