"""Merges, aliases and conflict resolutions on Neo4j (``cmdb.store.merges``): a part of the store that
fills the connection's extension hooks, and the merge look-ups of the batch reader.

``(:CIAlias {alias, ci_id, name_lc})`` maps a merged-away id (and its name) to the kept CI;
``(:ConflictResolution {id, resolution, at, actor, ci_ids})`` sits beside its ``(:Conflict)``. A
merged CI's history packs move to an ``EventIndex`` under its id (the stand-in ``events`` already
reads), and its relationships' packs are added to the CIs at their other ends, so no history is lost
when the node and its edges are deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import neo4j

from cmdb.errors import NotFoundError
from cmdb.store.merges import CIMerge, ConflictResolution
from cmdb.store.neo4j.connection import Neo4jConnection

if TYPE_CHECKING:
    from cmdb.store.base import Conflict, RelState

MERGE_SCHEMA = {
    "cmdb_ci_alias": "CREATE CONSTRAINT cmdb_ci_alias IF NOT EXISTS FOR (a:CIAlias) REQUIRE a.alias IS UNIQUE",
    "cmdb_ci_alias_ci": "CREATE INDEX cmdb_ci_alias_ci IF NOT EXISTS FOR (a:CIAlias) ON (a.ci_id)",
    "cmdb_ci_alias_name": "CREATE INDEX cmdb_ci_alias_name IF NOT EXISTS FOR (a:CIAlias) ON (a.name_lc)",
    # A merge re-points the duplicate's keys: found by CI id, not by scanning every key.
    "cmdb_ci_key_ci": "CREATE INDEX cmdb_ci_key_ci IF NOT EXISTS FOR (k:CIKey) ON (k.ci_id)",
    "cmdb_conflict_resolution":
        "CREATE CONSTRAINT cmdb_conflict_resolution IF NOT EXISTS FOR (x:ConflictResolution) REQUIRE x.id IS UNIQUE",
}
_APPLY = (
    # The duplicate's relationships' history packs go to the CIs at their other ends ...
    "MATCH (d:CI {id: $dup})-[r]-(o:CI) WHERE o <> d WITH o, collect(coalesce(r.ev, [])) AS evs"
    " SET o.ev = coalesce(o.ev, []) + reduce(a = [], e IN evs | a + e)",
    # ... and, with its own, to the stand-in under its id.
    "MATCH (d:CI {id: $dup}) OPTIONAL MATCH (d)-[r]-() WITH d, collect(coalesce(r.ev, [])) AS evs"
    " WITH reduce(a = coalesce(d.ev, []), e IN evs | a + e) AS ev"
    " MERGE (x:EventIndex {id: $dup}) SET x.ev = coalesce(x.ev, []) + ev",
    "MATCH (k:CIKey {ci_id: $dup}) SET k.ci_id = $keep",
    "MATCH (a:CIAlias {ci_id: $dup}) SET a.ci_id = $keep",
    "MERGE (a:CIAlias {alias: $dup}) SET a.ci_id = $keep, a.name_lc = $name",
    "MATCH (d:CI {id: $dup}) DETACH DELETE d",
)
_RESOLVE = ("MERGE (x:ConflictResolution {id: $id}) SET x.resolution = $resolution, x.at = $at, x.actor = $actor,"
            " x.ci_ids = $ci_ids")


class TxMergeReader:
    """Mixed into the transaction's reader (``reader.TxReader``)."""

    tx: neo4j.ManagedTransaction

    if TYPE_CHECKING:
        def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]: ...

    def rels_touching(self, ci_ids: Iterable[str]) -> list[RelState]:
        ids = [r["id"] for r in self.tx.run("UNWIND $ids AS id MATCH (:CI {id: id})-[r]-() RETURN DISTINCT r.id AS id",
                                            ids=sorted(set(ci_ids)))]
        return sorted(self.load_rels_by_id(ids).values(), key=lambda r: r.id)

    def kept_separate(self, ci_ids: Iterable[str]) -> list[list[str]]:
        wanted = set(ci_ids)
        out: list[list[str]] = []
        for r in self.tx.run("MATCH (x:ConflictResolution {resolution: 'keep_separate'}) RETURN x.ci_ids AS ids"):
            ids = json.loads(r["ids"])
            if wanted & set(ids):
                out.append(ids)
        return out


class Neo4jMerges(Neo4jConnection):
    """Aliases and conflict resolutions; merges applied at the end of each batch's transaction."""

    def _extend_schema(self) -> None:
        super()._extend_schema()
        have = {r["name"] for r in self._read("SHOW INDEXES YIELD name RETURN name")}
        missing = [ddl for name, ddl in MERGE_SCHEMA.items() if name not in have]
        for ddl in missing:
            self._autocommit(ddl, "creating the merge schema")
        if missing:
            self._autocommit("CALL db.awaitIndexes(600)", "waiting for indexes")

    def _after_batch_write(self, tx: neo4j.ManagedTransaction, prog: Any) -> None:
        super()._after_batch_write(tx, prog)
        m: CIMerge
        for m in prog.merges:
            params = {"keep": m.keep, "dup": m.dup, "name": (m.dup_name or "").lower() or None}
            for query in _APPLY:
                tx.run(query, params).consume()
            if m.resolves is not None:
                tx.run(_RESOLVE, id=m.resolves, resolution="merged", at=m.at, actor=m.actor,
                       ci_ids=json.dumps([m.keep, m.dup])).consume()

    def _dump_extra(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from super()._dump_extra()
        for r in self._read("MATCH (a:CIAlias) RETURN a.alias AS alias, a.ci_id AS ci_id, a.name_lc AS name_lc"
                            " ORDER BY alias"):
            yield "ci_alias", dict(r)
        for r in self._read("MATCH (x:ConflictResolution) RETURN x.id AS id, x.resolution AS resolution,"
                            " x.at AS at, x.actor AS actor, x.ci_ids AS ci_ids ORDER BY id"):
            yield "conflict_resolution", dict(r)

    def _restore_extra(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, dict[str, Any]]]:
        return self._restore_merges(super()._restore_extra(records))

    def _restore_merges(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
        queries = {"ci_alias": "UNWIND $rows AS row CREATE (a:CIAlias) SET a = row",
                   "conflict_resolution": "UNWIND $rows AS row CREATE (x:ConflictResolution) SET x = row"}
        pending: dict[str, list[dict[str, Any]]] = {k: [] for k in queries}
        for kind, row in records:
            if kind not in pending:
                yield kind, row
                continue
            pending[kind].append({k: v for k, v in row.items() if v is not None})
        for kind, rows in pending.items():
            if rows:
                self._restore_write(queries[kind], rows)

    def resolve_alias(self, ci_id: str) -> str | None:
        rows = self._read("MATCH (a:CIAlias {alias: $id}) RETURN a.ci_id AS id", id=ci_id)
        return str(rows[0]["id"]) if rows else None

    def aliases_of(self, ci_id: str) -> list[str]:
        return [str(r["a"]) for r in self._read("MATCH (a:CIAlias {ci_id: $id}) RETURN a.alias AS a ORDER BY a",
                                                 id=ci_id)]

    def alias_ids(self, ci_ids: list[str]) -> list[str]:
        """``ci_ids`` and the ids merged into them (for history)."""
        rows = self._read("UNWIND $ids AS id MATCH (a:CIAlias {ci_id: id}) RETURN a.alias AS a", ids=ci_ids)
        return [*ci_ids, *(str(r["a"]) for r in rows)]

    def alias_names(self, name: str) -> list[str]:
        return [str(r["id"]) for r in self._read("MATCH (a:CIAlias {name_lc: $n}) RETURN a.ci_id AS id",
                                                  n=name.lower())]

    if TYPE_CHECKING:
        def conflicts(self, state: str = "open") -> list[Conflict]: ...

    def conflict(self, conflict_id: str) -> Conflict | None:
        return next((c for c in self.conflicts("all") if c.id == conflict_id), None)

    def resolve_conflict(self, resolution: ConflictResolution) -> None:
        r = resolution

        def work(tx: neo4j.ManagedTransaction) -> None:
            if tx.run("MATCH (c:Conflict {id: $id}) RETURN c.id", id=r.id).single() is None:
                raise NotFoundError(f"no identity conflict {r.id!r}; `cmdb conflicts` lists them")
            tx.run(_RESOLVE, id=r.id, resolution=r.resolution, at=r.at, actor=r.actor,
                   ci_ids=json.dumps(r.ci_ids)).consume()

        self._in_write(work, "resolving a conflict")
