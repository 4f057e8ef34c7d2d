"""Writing batches into Neo4j: a plan's change set built into rows (``WriteProgram``), written in one
managed transaction; or planned ahead in a read transaction and written later by the pipelined
writer (``cmdb.store.neo4j.pipeline``) if the store has not moved meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as nx

from cmdb.errors import CmdbError, StoreError
from cmdb.store.base import BatchReader, ChangeSet
from cmdb.store.conflicts import closure_rows
from cmdb.store.merges import CIMerge
from cmdb.store.neo4j.codecs import (
    attr_tokens,
    conflict_row,
    dump_json,
    pack_text,
    prov_blob,
    prov_json,
    sight_entry,
    sight_key,
)
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.neo4j.layout import EVENTS_PER_PACK, LOCK_META, OTHER_REL, SCHEMA_VERSION
from cmdb.store.neo4j.reader import TxReader

_T = TypeVar("_T")


class _Stale(Exception):
    """A batch planned ahead no longer matches the store; it is planned again instead."""


def _last_wins(items: Iterable[Any], key: Callable[[Any], Any]) -> list[Any]:
    """Later writes of one key replace earlier ones, as SQLite's ordered statements do."""
    out: dict[Any, Any] = {}
    for item in items:
        out.pop(key(item), None)
        out[key(item)] = item
    return list(out.values())



@dataclass
class WriteProgram:
    """The rows one batch writes, built outside the transaction: plain lists, cheap to pickle."""

    seq: int  # the store's event counter this program's events are numbered from
    events: int
    eids: dict[str, str]  # CI id -> element id of CIs the plan read (element ids outlive transactions)
    cis_new: list[tuple[str, list[list[Any]]]] = field(default_factory=list)
    cis_changed: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)
    rels_new: list[tuple[str, list[list[Any]]]] = field(default_factory=list)
    rels_changed: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    sightings: list[tuple[str, list[list[Any]]]] = field(default_factory=list)
    members: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    scope_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    packs: list[list[Any]] = field(default_factory=list)
    event_refs: dict[str, list[int]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    keys_retired: list[list[str]] = field(default_factory=list)
    conflicts_closed: list[dict[str, Any]] = field(default_factory=list)  # closure rows (neo4j.conflicts)
    merges: list[CIMerge] = field(default_factory=list)  # applied last (``merges.Neo4jMerges``)



class Neo4jWriter(Neo4jConnection):
    """Batch writes: ``write_batch`` (the protocol's), and the planned-ahead pair for the pipeline."""

    # -- writing --------------------------------------------------------------------------------
    def write_batch(self, plan: Callable[[BatchReader], ChangeSet]) -> ChangeSet:
        return self.write_counted(plan)[0]

    def write_counted(self, plan: Callable[[BatchReader], ChangeSet]) -> tuple[ChangeSet, int, int]:
        """``write_batch``, also returning the store's write counter and event counter as it left them."""
        def work(tx: neo4j.ManagedTransaction) -> tuple[ChangeSet, int, int]:
            meta = self._lock(tx)
            reader = TxReader(tx, [*self._rel_types, OTHER_REL])
            cs = plan(reader)
            prog = self._build(cs, int(meta["seq"] or 0), reader)
            self._execute(tx, prog)
            return cs, int(meta["writes"]), prog.seq + prog.events

        return self._in_write(work, "writing a batch")

    def write_program(self, prog: WriteProgram, writes: int) -> tuple[int, int] | None:
        """Write a batch planned ahead (``plan_ahead``) if the store's write counter, once this write
        holds the lock, is ``writes`` and its event counter ``prog.seq``: then nothing but the writes
        the planner accounted for happened since the plan's reads began. None (nothing written)
        otherwise; (write counter, event counter) as the write left them if written."""
        def work(tx: neo4j.ManagedTransaction) -> tuple[int, int] | None:
            meta = self._lock(tx)
            if int(meta["writes"]) != writes or int(meta["seq"] or 0) != prog.seq:
                raise _Stale
            self._execute(tx, prog)
            return writes, prog.seq + prog.events

        try:
            return self._in_write(work, "writing a batch")
        except _Stale:
            return None

    def plan_ahead(self, plan: Callable[[BatchReader], ChangeSet], seq: int | None,
                   reader_factory: Callable[[neo4j.ManagedTransaction, list[str]], TxReader]
                   ) -> tuple[ChangeSet, WriteProgram, int, TxReader]:
        """Plan and build a batch in a read transaction, while another batch may be in flight.

        Returns (changes, program, the write counter when the reads began, the reader used). The
        program's events are numbered from ``seq`` (the event counter the write in flight will leave)
        or, with no write in flight, from the counter read here. ``write_program`` writes it only if
        that all still holds."""
        def work(tx: neo4j.ManagedTransaction) -> tuple[ChangeSet, WriteProgram, int, TxReader]:
            meta = tx.run("OPTIONAL MATCH (m:CmdbMeta {name: 'store'})"
                          " RETURN m.writes AS writes, m.seq AS seq, m.restoring AS restoring").single(strict=True)
            if meta["restoring"]:
                raise StoreError(f"{self.url} holds an unfinished restore; clear it and restore again")
            reader = reader_factory(tx, [*self._rel_types, OTHER_REL])
            cs = plan(reader)
            prog = self._build(cs, int(meta["seq"] or 0) if seq is None else seq, reader)
            return cs, prog, int(meta["writes"] or 0), reader

        try:
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                result: tuple[ChangeSet, WriteProgram, int, TxReader] = session.execute_read(work)
                return result
        except CmdbError:
            raise
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "planning a batch") from exc


    def _lock(self, tx: neo4j.ManagedTransaction) -> Any:
        meta = tx.run(LOCK_META, version=SCHEMA_VERSION).single(strict=True)
        if meta["restoring"]:
            raise StoreError(f"{self.url} holds an unfinished restore; clear it and restore again")
        return meta

    def _build(self, cs: ChangeSet, seq: int, reader: TxReader) -> WriteProgram:
        """The rows of every statement that writes ``cs``, its events numbered from ``seq``.

        Pure row building (the reader is asked only for relationship types it has not seen), so a
        pipelined load builds batch N+1's rows while batch N is written (``pipeline``).
        Sightings and history references ride on the rows that create or update their item, so an
        item seen again or a CI created costs one row, not three nodes."""
        prog = WriteProgram(seq=seq, events=len(cs.events), eids=dict(reader.eids))
        new_rels = {r.id: r for r in cs.rels_new}

        # Sightings per item (the last write of one (source, scope) wins) and new scope members.
        sights: dict[tuple[str, str], dict[str, str]] = {}
        scope_of = prog.scope_of
        # Keyed by content: the items one run sees mostly carry equal sightings, one JSON text for all.
        texts: dict[tuple[Any, ...], tuple[str, str]] = {}
        for w in cs.sightings:
            s = w.sighting
            content = (s.source, s.scope, s.first_seen, s.last_seen, s.last_run, s.missed, s.status)
            text = texts.get(content)
            if text is None:
                text = texts[content] = (sight_key(s.source, s.scope), sight_entry(s))
                scope_of[text[0]] = (s.source, s.scope)
            sights.setdefault((w.kind, w.item_id), {})[text[0]] = text[1]
        members = prog.members
        rel_types = {**reader.rel_types, **{r.id: r.type for r in cs.rels_changed}, **{i: r.type
                                                                                        for i, r in new_rels.items()}}

        def member(key: str, kind: str, item_id: str) -> None:
            label = "" if kind == "ci" else self._rel_label(rel_types[item_id])
            members.setdefault((key, kind, label), []).append(item_id)

        # History: packs of consecutive events; each CI or relationship lists the packs it is in.
        packs = prog.packs
        ev: dict[tuple[str, str], list[int]] = {}
        rel_ends = {i: (r.src, r.dst) for i, r in new_rels.items()}
        rel_ends.update((r.id, (r.src, r.dst)) for r in cs.rels_changed)
        dumps = dump_json
        for start in range(0, len(cs.events), EVENTS_PER_PACK):
            chunk = cs.events[start:start + EVENTS_PER_PACK]
            n = seq + start + 1
            packs.append([n, min(e.at for e in chunk), max(e.at for e in chunk), len(chunk), pack_text(
                [[n + i, e.at, e.ci_id, e.peer_id, e.kind, e.source, e.run_id, e.rel_id, e.attr, e.old, e.new,
                  e.actor] for i, e in enumerate(chunk)])])
            for e in chunk:
                if e.rel_id is not None and rel_ends.get(e.rel_id) == (e.ci_id, e.peer_id):
                    owners: tuple[tuple[str, str], ...] = (("rel", e.rel_id),)
                else:
                    owners = tuple(("ci", i) for i in (e.ci_id, e.peer_id) if i is not None)
                for owner in owners:
                    lst = ev.setdefault(owner, [])
                    if not lst or lst[-1] != n:
                        lst.append(n)

        by_label: dict[str, list[list[Any]]] = {}
        for c in cs.cis_new:
            sg = sights.pop(("ci", c.id), {})
            for key in sg:
                member(key, "ci", c.id)
            by_label.setdefault(self._class_label(c.cls), []).append(
                [c.id, c.cls, c.name, (c.name or "").lower(), c.status, dumps(c.attrs), attr_tokens(c.attrs),
                 c.created_at, c.updated_at if c.updated_at != c.created_at else None,
                 prov_blob(c.provenance, c.attrs, c.cls), sorted(sg.values()) or None,
                 ev.pop(("ci", c.id), None)]
            )
        prog.cis_new = list(by_label.items())

        changed: dict[str, list[dict[str, Any]]] = {}
        for c in _last_wins(cs.cis_changed, lambda c: c.id):
            changed.setdefault(self._class_label(c.cls), []).append(
                {"id": c.id, "class": c.cls, "name": c.name, "name_lc": (c.name or "").lower(), "status": c.status,
                 "attrs": dumps(c.attrs), "aidx": attr_tokens(c.attrs), "updated_at": c.updated_at,
                 "provenance": prov_blob(c.provenance, c.attrs, c.cls), "ev": ev.pop(("ci", c.id), [])}
            )
        prog.cis_changed = list(changed.items())
        prog.keys = [list(k) for k in cs.keys]

        rels_new: dict[str, list[list[Any]]] = {}
        for r in cs.rels_new:
            sg = sights.pop(("rel", r.id), {})
            for key in sg:
                member(key, "rel", r.id)
            rels_new.setdefault(self._rel_label(r.type), []).append(
                [r.src, r.dst, r.id, r.type if self._rel_label(r.type) == OTHER_REL else None,
                 dumps(r.attrs) if r.attrs else None, r.status, r.created_at,
                 r.updated_at if r.updated_at != r.created_at else None, sorted(sg.values()) or None,
                 ev.pop(("rel", r.id), None), prov_json(r.provenance) if r.provenance else None]
            )
        prog.rels_new = list(rels_new.items())
        rels_changed: dict[str, list[dict[str, Any]]] = {}
        for r in _last_wins(cs.rels_changed, lambda r: r.id):
            rels_changed.setdefault(self._rel_label(r.type), []).append(
                {"id": r.id, "attrs": dumps(r.attrs), "status": r.status, "updated_at": r.updated_at,
                 "ev": ev.pop(("rel", r.id), []),
                 # None keeps the stored provenance (a lifecycle change does not read it); "" clears it
                 "prov": None if r.provenance is None else prov_json(r.provenance) if r.provenance else ""}
            )
        prog.rels_changed = list(rels_changed.items())

        # Sightings of items that already existed: replace this (source, scope)'s entry.
        update: dict[str, list[list[Any]]] = {}
        unknown = [i for k, i in sights if k == "rel" and i not in rel_types]
        if unknown:
            rel_types.update(reader.rel_types_of(unknown))
        for (kind, item_id), sg in sights.items():
            if kind == "ci":
                label = ""
            elif item_id in rel_types:
                label = self._rel_label(rel_types[item_id])
            else:
                raise StoreError(f"a sighting names relationship {item_id}, which does not exist in {self.url};"
                                 " nothing of this batch was written")
            update.setdefault(label, []).append([item_id, list(sg), sorted(sg.values())])
        prog.sightings = list(update.items())

        # Events of CIs and relationships this change set does not write (another planner's): by CI.
        for (kind, item_id), ns in ev.items():
            if kind == "ci":
                prog.event_refs.setdefault(item_id, []).extend(ns)
        prog.conflicts = [conflict_row(c) for c in cs.conflicts]
        prog.keys_retired = [list(k) for k in cs.keys_retired]
        prog.conflicts_closed = closure_rows(cs)
        prog.merges = list(cs.merges)
        ledger = cs.run
        prog.run = {"run_id": ledger.run_id, "source": ledger.source, "scope": ledger.scope,
                    "complete": bool(ledger.complete), "started_at": ledger.started_at, "ended_at": ledger.ended_at,
                    "actor": ledger.actor, "stats": dumps(ledger.stats)}
        return prog

    def _execute(self, tx: neo4j.ManagedTransaction, prog: WriteProgram) -> None:
        """One UNWIND statement per record kind (and per label or type) of ``prog``."""
        def run(query: str, **params: Any) -> Any:
            return tx.run(query, params).single()

        eids = prog.eids
        for label, group in prog.cis_new:
            # Lists, not maps, as rows: less to pack and unpack per item.
            made = run(f"UNWIND $rows AS row CREATE (c:CI{label} {{id: row[0], class: row[1], name: row[2],"
                       " name_lc: row[3], status: row[4], attrs: row[5], aidx: row[6], created_at: row[7],"
                       " updated_at: row[8], provenance: row[9], sg: row[10], ev: row[11]})"
                       " RETURN collect([c.id, elementId(c)]) AS made", rows=group)
            eids.update(made["made"])

        all_labels = ":".join(self._class_labels)
        for label, rows in prog.cis_changed:
            relabel = f" REMOVE c:{all_labels}" if all_labels else ""
            run(
                "UNWIND $rows AS row MATCH (c:CI {id: row.id}) WITH c, row, c.class AS old"
                " SET c.class = row.class, c.name = row.name, c.name_lc = row.name_lc, c.status = row.status,"
                " c.attrs = row.attrs, c.aidx = row.aidx, c.updated_at = row.updated_at, c.provenance = row.provenance,"
                " c.ev = CASE WHEN size(row.ev) > 0 THEN coalesce(c.ev, []) + row.ev ELSE c.ev END"
                f" WITH c, row, old WHERE old <> row.class{relabel}" + (f" SET c{label}" if label else ""),
                rows=rows,
            )
        if prog.keys_retired:  # before new keys: one batch may move a key to another CI
            run("UNWIND $rows AS row MATCH (k:CIKey {key: row[0]}) WHERE k.ci_id = row[1] DELETE k",
                rows=prog.keys_retired)
        if prog.keys:
            run("UNWIND $rows AS row CREATE (:CIKey {key: row[0], ci_id: row[1]})", rows=prog.keys)

        create = (" CREATE (a)-[r:{rtype} {{id: row[2], type: row[3], attrs: row[4], status: row[5],"
                  " created_at: row[6], updated_at: row[7], sg: row[8], ev: row[9], prov: row[10]}}]->(b)"
                  " RETURN count(r) AS n")
        for rtype, new_rows in prog.rels_new:
            # Ends this transaction created or read are found by element id, a direct record read;
            # any other end through the CI id index.
            by_eid = [[eids[row[0]], eids[row[1]], *row[2:]] for row in new_rows if row[0] in eids and row[1] in eids]
            by_id = [row for row in new_rows if row[0] not in eids or row[1] not in eids]
            made = 0
            if by_eid:
                made += run("UNWIND $rows AS row MATCH (a) WHERE elementId(a) = row[0]"
                            " MATCH (b) WHERE elementId(b) = row[1]" + create.format(rtype=rtype), rows=by_eid)["n"]
            if by_id:
                made += run("UNWIND $rows AS row MATCH (a:CI {id: row[0]}) USING INDEX SEEK a:CI(id)"
                            " MATCH (b:CI {id: row[1]}) USING INDEX SEEK b:CI(id)" + create.format(rtype=rtype),
                            rows=by_id)["n"]
            if made != len(new_rows):
                raise StoreError(f"{len(new_rows) - made} new {rtype} relationship(s) name a CI that does not exist "
                                 f"in {self.url}; nothing of this batch was written")
        for rtype, rows in prog.rels_changed:
            run(f"UNWIND $rows AS row MATCH ()-[r:{rtype} {{id: row.id}}]->() USING INDEX SEEK r:{rtype}(id)"
                " SET r.attrs = row.attrs, r.status = row.status, r.updated_at = row.updated_at,"
                " r.prov = CASE WHEN row.prov IS NULL THEN r.prov WHEN row.prov = '' THEN null ELSE row.prov END,"
                " r.ev = CASE WHEN size(row.ev) > 0 THEN coalesce(r.ev, []) + row.ev ELSE r.ev END", rows=rows)

        # Sightings of items that already existed: replace this (source, scope)'s entry, note new members.
        members = {k: list(v) for k, v in prog.members.items()}
        for label, items in prog.sightings:
            match = (f"MATCH ()-[x:{label} {{id: row[0]}}]->() USING INDEX SEEK x:{label}(id)" if label
                     else "MATCH (x:CI {id: row[0]})")
            rec = run(
                f"UNWIND $rows AS row {match}"
                " WITH x, row, [p IN row[1] WHERE NOT any(e IN coalesce(x.sg, []) WHERE e STARTS WITH p)] AS fresh"
                " SET x.sg = [e IN coalesce(x.sg, []) WHERE NOT any(p IN row[1] WHERE e STARTS WITH p)] + row[2]"
                " RETURN count(*) AS n, collect(CASE WHEN size(fresh) > 0 THEN [x.id, fresh] END) AS fresh",
                rows=items,
            )
            if rec["n"] != len(items):
                raise StoreError(f"{len(items) - rec['n']} sighting(s) name an item that does not exist in {self.url};"
                                 " nothing of this batch was written")
            for item_id, keys in rec["fresh"]:
                for key in keys:
                    members.setdefault((key, "rel" if label else "ci", label), []).append(item_id)
        if members:
            run("UNWIND $rows AS row CREATE (:SightMembers {sk: row[0], kind: row[1], label: row[2], ids: row[3]})",
                rows=[[dump_json(list(prog.scope_of[k])), kind, label, ids]
                      for (k, kind, label), ids in members.items()])
        if prog.scope_of:
            run("UNWIND $rows AS row MERGE (x:SightScope {sk: row[0]})"
                " ON CREATE SET x.source = row[1], x.scope = row[2]",
                rows=[[dump_json([src, scope]), src, scope] for src, scope in prog.scope_of.values()])

        if prog.packs:
            run("UNWIND $rows AS row CREATE (:EventPack {n: row[0], at0: row[1], at1: row[2], k: row[3],"
                " b: row[4]})", rows=prog.packs)
            if prog.event_refs:
                self._index_events(run, prog.event_refs)
            run("MATCH (m:CmdbMeta {name: 'store'}) SET m.seq = $seq", seq=prog.seq + prog.events)
        if prog.conflicts:
            run("UNWIND $rows AS row MERGE (c:Conflict {id: row.id}) SET c += row", rows=prog.conflicts)
        run("MERGE (x:Run {run_id: $row.run_id}) SET x = $row", row=prog.run)
        self._after_batch_write(tx, prog)

    @staticmethod
    def _index_events(run: Callable[..., Any], refs: dict[str, list[int]]) -> None:
        """Append pack numbers to CIs' ``ev``; an id without a CI node gets an ``EventIndex``."""
        rows = [[i, sorted(set(ns))] for i, ns in refs.items()]
        found = run("UNWIND $rows AS row MATCH (c:CI {id: row[0]}) SET c.ev = coalesce(c.ev, []) + row[1]"
                    " RETURN count(*) AS n", rows=rows)
        if found["n"] != len(rows):
            run("UNWIND $rows AS row WITH row WHERE NOT EXISTS { MATCH (c:CI {id: row[0]}) }"
                " MERGE (x:EventIndex {id: row[0]}) SET x.ev = coalesce(x.ev, []) + row[1]", rows=rows)
