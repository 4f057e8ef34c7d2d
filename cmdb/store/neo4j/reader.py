"""The batch reader of a Neo4j transaction: what a plan asks the store, one query per question."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import neo4j

from cmdb.store.base import CIState, Conflict, RelState, Sighting, rel_id_for
from cmdb.store.neo4j.codecs import ci_state, dump_json, load_json, parse_sightings, rel_state
from cmdb.store.neo4j.conflicts import OPEN
from cmdb.store.neo4j.layout import CI_MAP_TX, OTHER_REL, REL_MAP_SG, REL_TYPE
from cmdb.store.neo4j.merges import TxMergeReader


class TxReader(TxMergeReader):
    """BatchReader over the open write transaction; each method is one query (or one per kind)."""

    def __init__(self, tx: neo4j.ManagedTransaction, rel_labels: list[str]) -> None:
        self.tx = tx
        self._rel_labels = rel_labels
        self.rel_types: dict[str, str] = {}  # relationship id -> type, of every relationship read
        self.eids: dict[str, str] = {}  # CI id -> element id, valid for this transaction only

    def _label(self, rtype: str) -> str:
        return rtype if rtype in self._rel_labels else OTHER_REL

    def _cis(self, rows: Iterable[Any]) -> dict[str, CIState]:
        # In id order, as SQLite returns them: the plan's event order follows this order.
        out: dict[str, CIState] = {}
        for ci in sorted(rows, key=lambda ci: str(ci["id"])):
            out[ci["id"]] = ci_state(ci)
            self.eids[ci["id"]] = ci["eid"]
        return out

    def _rels(self, rows: Iterable[Any]) -> list[RelState]:
        rels = sorted((rel_state(r["r"], r["src"], r["dst"]) for r in rows), key=lambda r: r.id)
        self.rel_types.update((r.id, r.type) for r in rels)
        return rels

    def _by_id(self, ids_by_label: dict[str, list[str]], ret: str) -> list[dict[str, Any]]:
        """One seek per relationship id through its type's uniqueness index, all types in one query.

        The query names every type, in a fixed order (absent ones get no ids), so its text never
        changes and the server plans it once."""
        branches = " UNION ALL ".join(
            f"UNWIND $p{i} AS id MATCH (a)-[r:{label} {{id: id}}]->(b) USING INDEX SEEK r:{label}(id) RETURN a, r, b"
            for i, label in enumerate(self._rel_labels)
        )
        params = {f"p{i}": ids_by_label.get(label, []) for i, label in enumerate(self._rel_labels)}
        # Hints keep a replanned query from scanning an index; replan=skip keeps the one plan.
        # ``ret`` is a map per relationship, all collected into one list: one record, not one each.
        rec = self.tx.run(f"CYPHER replan=skip CALL () {{ {branches} }} RETURN collect({ret}) AS rows", params)
        rows: list[dict[str, Any]] = rec.single(strict=True)["rows"]
        return rows

    def match_keys(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, CIState]]:
        rec = self.tx.run(
            "UNWIND $keys AS k MATCH (x:CIKey {key: k})"
            " WITH collect([x.key, x.ci_id]) AS pairs, collect(DISTINCT x.ci_id) AS ids"
            f" CALL (ids) {{ UNWIND ids AS id MATCH (c:CI {{id: id}}) RETURN collect({CI_MAP_TX}) AS cis }}"
            " RETURN pairs, cis",
            keys=list(keys),
        ).single(strict=True)
        return {k: c for k, c in rec["pairs"]}, self._cis(rec["cis"])

    def resolve_keys(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        # One collected list, not a record per key: the driver's per-record cost dominated.
        rec = self.tx.run(
            "UNWIND $keys AS k MATCH (x:CIKey {key: k}) MATCH (c:CI {id: x.ci_id})"
            " RETURN collect([x.key, c.id, c.class, elementId(c)]) AS found",
            keys=list(keys),
        ).single(strict=True)
        out: dict[str, tuple[str, str]] = {}
        for key, ci_id, cls, eid in rec["found"]:
            out[key] = (ci_id, cls)
            self.eids[ci_id] = eid
        return out

    def load_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        rec = self.tx.run(f"UNWIND $ids AS id MATCH (c:CI {{id: id}}) RETURN collect({CI_MAP_TX}) AS cis",
                          ids=list(ids)).single(strict=True)
        return self._cis(rec["cis"])

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        # Ids are derived from (type, src, dst): one index seek per relationship, as SQLite's primary key.
        by_label: dict[str, list[str]] = {}
        for t in triples:
            by_label.setdefault(self._label(t[0]), []).append(rel_id_for(*t))
        if not by_label:
            return {}
        rels = self._rels(self._by_id(by_label, f"{{r: {REL_MAP_SG}, src: a.id, dst: b.id}}"))
        return {(r.type, r.src, r.dst): r for r in rels}

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]:
        ids = list(ids)
        if not ids:
            return {}
        # An id alone does not tell the type: look in every type's index.
        rels = self._rels(self._by_id({label: ids for label in self._rel_labels},
                                      f"{{r: {REL_MAP_SG}, src: a.id, dst: b.id}}"))
        return {r.id: r for r in rels}

    def rel_types_of(self, ids: list[str]) -> dict[str, str]:
        found = {r["id"]: r["type"] for r in self._by_id({label: ids for label in self._rel_labels},
                                                          f"{{id: r.id, type: {REL_TYPE}}}")}
        self.rel_types.update(found)
        return found

    def scopes(self, source: str) -> list[str]:
        return [r["scope"] for r in self.tx.run(
            "MATCH (x:SightScope {source: $source}) RETURN x.scope AS scope", source=source)]

    def sightings_in(
        self, source: str, scopes: list[str]
    ) -> tuple[list[tuple[str, Sighting]], list[tuple[str, Sighting]]]:
        cis: set[str] = set()
        by_label: dict[str, set[str]] = {}
        for r in self.tx.run("MATCH (m:SightMembers) WHERE m.sk IN $sks RETURN m.kind AS kind, m.label AS label,"
                             " m.ids AS ids", sks=[dump_json([source, scope]) for scope in scopes]):
            (cis if r["kind"] == "ci" else by_label.setdefault(r["label"], set())).update(r["ids"])
        wanted = set(scopes)
        ci_out: list[tuple[str, Sighting]] = []
        if cis:
            for r in self.tx.run("UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN c.id AS id, c.sg AS sg",
                                 ids=sorted(cis)):
                ci_out.extend((r["id"], s) for s in parse_sightings(r["sg"]).values()
                              if s.source == source and s.scope in wanted)
        rel_out: list[tuple[str, Sighting]] = []
        if by_label:
            rows = self._by_id({label: sorted(ids) for label, ids in by_label.items()},
                               f"{{id: r.id, type: {REL_TYPE}, sg: r.sg}}")
            for x in rows:
                self.rel_types[x["id"]] = x["type"]
                rel_out.extend((x["id"], s) for s in parse_sightings(x["sg"]).values()
                               if s.source == source and s.scope in wanted)
        return sorted(ci_out, key=lambda p: (p[0], p[1].scope)), sorted(rel_out, key=lambda p: (p[0], p[1].scope))


    def run_scopes(self, run_ids: Iterable[str]) -> dict[str, str | None]:
        rec = self.tx.run("UNWIND $ids AS id MATCH (x:Run {run_id: id}) RETURN collect([x.run_id, x.scope]) AS found",
                          ids=list(run_ids)).single(strict=True)
        return {run_id: scope for run_id, scope in rec["found"]}

    def open_conflicts(self, keys: Iterable[str]) -> list[Conflict]:
        # Conflicts are few and their keys a JSON map: read them all, keep those naming a key.
        wanted = set(keys)
        rows = self.tx.run(f"MATCH (c:Conflict) WHERE {OPEN} RETURN collect(c {{.*}}) AS cs").single(strict=True)["cs"]
        out = [Conflict(id=c["id"], at=c["at"], source=c["source"], run_id=c["run_id"], item=c["item"],
                        item_class=c["item_class"], keys=load_json(c["keys"]), ci_ids=load_json(c["ci_ids"]),
                        attrs=load_json(c["attrs"])) for c in rows]
        return sorted((c for c in out if not wanted.isdisjoint(c.keys)), key=lambda c: (c.at, c.id))
