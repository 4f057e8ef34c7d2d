"""Export and restore of the Neo4j store (rows shaped like the SQLite store's tables), and clearing it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import neo4j
from neo4j import exceptions as nx

from cmdb.errors import BadInputError, StoreError, StoreNotEmptyError
from cmdb.store.base import Sighting
from cmdb.store.neo4j.codecs import (
    SEP,
    attr_tokens,
    dump_json,
    load_json,
    pack_events,
    pack_text,
    parse_provenance,
    parse_sightings,
    prov_blob,
    prov_json,
    sight_entry,
    sight_key,
)
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.neo4j.layout import BATCH_ROWS, BUMP_WRITES, CI_MAP, EVENTS_PER_PACK, REL_MAP, SCHEMA_VERSION, TABLES


class Neo4jRestore(Neo4jConnection):
    """``dump``, ``restore`` and ``clear``."""

    # -- export / restore / housekeeping --------------------------------------------------------
    def _stream(self, query: str) -> Iterator[neo4j.Record]:
        """Records of one read query, fetched lazily so a dump never sits whole in memory."""
        try:
            with self._driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS,
                                      fetch_size=BATCH_ROWS) as session:
                yield from session.run(query)
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "dumping") from exc

    def dump(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Rows shaped like the SQLite store's tables, so either store restores the other's dump."""
        for r in self._stream(f"MATCH (c:CI) RETURN {CI_MAP} AS c, c.name_lc AS name_lc ORDER BY c.id"):
            c = r["c"]
            yield "ci", {"id": c["id"], "class": c["class"], "name": c["name"], "name_lc": r["name_lc"],
                         "status": c["status"], "attrs": c["attrs"], "created_at": c["created_at"],
                         "updated_at": c["updated_at"],
                         "provenance": prov_json(parse_provenance(c["provenance"], json.loads(c["attrs"]), c["class"]))}
        for r in self._stream("MATCH (k:CIKey) RETURN k.key AS key, k.ci_id AS ci_id ORDER BY key"):
            yield "ci_key", {"key": r["key"], "ci_id": r["ci_id"]}
        for kind, query in (
            ("ci", "MATCH (c:CI) WHERE c.sg IS NOT NULL RETURN c.id AS id, c.sg AS sg ORDER BY id"),
            ("rel", "MATCH (:CI)-[r]->(:CI) WHERE r.sg IS NOT NULL RETURN r.id AS id, r.sg AS sg ORDER BY id"),
        ):
            for r in self._stream(query):
                for s in parse_sightings(r["sg"]).values():
                    yield "sighting", {"kind": kind, "item_id": r["id"], "source": s.source, "scope": s.scope,
                                       "first_seen": s.first_seen, "last_seen": s.last_seen, "last_run": s.last_run,
                                       "missed": s.missed, "status": s.status}
        for r in self._stream(f"MATCH (a:CI)-[r]->(b:CI) RETURN {REL_MAP} AS r, a.id AS src, b.id AS dst"
                              " ORDER BY r.created_at, r.id"):
            x = r["r"]
            yield "rel", {"id": x["id"], "type": x["type"], "src": r["src"], "dst": r["dst"], "attrs": x["attrs"],
                          "status": x["status"], "created_at": x["created_at"], "updated_at": x["updated_at"]}
        for r in self._stream("MATCH (p:EventPack) RETURN p.b AS b ORDER BY p.n"):
            for e in sorted(pack_events(r["b"]), key=lambda e: e.seq or 0):
                yield "event", {"seq": e.seq, "at": e.at, "kind": e.kind, "source": e.source, "run_id": e.run_id,
                                "ci_id": e.ci_id, "rel_id": e.rel_id, "peer_id": e.peer_id, "attr": e.attr,
                                "old": dump_json(e.old) if e.old is not None else None,
                                "new": dump_json(e.new) if e.new is not None else None, "actor": e.actor}
        for r in self._stream("MATCH (c:Conflict) RETURN c {.*} AS c ORDER BY c.at, c.id"):
            c = r["c"]
            yield "conflict", {k: c.get(k) for k in ("id", "at", "source", "run_id", "item", "item_class", "keys",
                                                     "ci_ids", "attrs")}
        for r in self._stream("MATCH (x:Run) RETURN x {.*} AS x ORDER BY x.started_at, x.run_id"):
            x = r["x"]
            yield "run", {"run_id": x["run_id"], "source": x["source"], "scope": x.get("scope"),
                          "complete": int(bool(x["complete"])), "started_at": x["started_at"],
                          "ended_at": x["ended_at"], "actor": x.get("actor"), "stats": x["stats"]}
        for r in self._stream("MATCH (x:DiscoveryRun) RETURN x {.*} AS x ORDER BY x.started_at, x.run_id"):
            x = r["x"]
            yield "discovery_run", {"run_id": x["run_id"], "method": x["method"], "started_at": x["started_at"],
                                    "data": x["data"]}
        yield from self._dump_extra()

    def restore(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Load a dump into an empty store, in transactions of ``BATCH_ROWS`` rows.

        One transaction for a whole estate would not fit a server's transaction memory, so a failed
        restore is undone by clearing the store; a crash mid-way leaves the store flagged, and
        ``write_batch`` refuses to write into it until it is cleared.
        """
        if not self.is_empty():
            raise StoreNotEmptyError(f"{self.url} is not empty; restore needs an empty store (clear it first)")
        self._write(f"MERGE (m:CmdbMeta {{name: 'store'}}) SET m.restoring = true, m.seq = 0, {BUMP_WRITES}")
        try:
            _Restorer(self).load(self._restore_extra(records))
            self._after_restore()
        except BaseException:
            # If even clearing fails, the restoring flag stays set and writes are refused until cleared.
            with contextlib.suppress(StoreError):
                self.clear()
            raise
        self._write(f"MATCH (m:CmdbMeta {{name: 'store'}}) SET m.restoring = false, {BUMP_WRITES}")

    def clear(self) -> None:
        """Delete every node and relationship of the database (the store owns it), in server-side
        batches; constraints and indexes stay."""
        # The meta node stays, so its write counter keeps rising: a batch planned ahead of a clear
        # is never written after it (``write_program``).
        self._autocommit("MATCH (n) WHERE NOT n:CmdbMeta CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
                         "clearing")
        self._write("MERGE (m:CmdbMeta {name: 'store'})"
                    f" SET m.seq = 0, m.restoring = false, m.schema_version = $v, {BUMP_WRITES}", v=SCHEMA_VERSION)


class _Restorer:
    """Streams dump records into the store in batches of ``BATCH_ROWS``, CIs before relationships.

    Sightings and history references are attached to their items once every item is in place."""

    def __init__(self, store: Neo4jRestore) -> None:
        self.store = store
        self.pending: dict[str, list[Any]] = {t: [] for t in TABLES}
        self.scopes: dict[str, dict[str, str]] = {}
        self.sights: dict[tuple[str, str], dict[str, str]] = {}
        self.rel_labels: dict[str, str] = {}
        self.ev: dict[str, list[int]] = {}
        self.max_seq = 0

    def load(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for kind, row in records:
            if kind not in TABLES:
                raise BadInputError(f"unknown record kind {kind!r} in the dump; expected one of {', '.join(TABLES)}")
            try:
                value = self.row(kind, row)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadInputError(f"a {kind} record of the dump is malformed ({exc!r}): {row!r:.200}") from None
            if value is None:
                continue
            self.pending[kind].append(value)
            if len(self.pending[kind]) >= BATCH_ROWS:
                self.flush(kind)
        for kind in TABLES:
            self.flush(kind)
        self.attach_sightings()
        if self.ev:
            items = list(self.ev.items())
            for i in range(0, len(items), BATCH_ROWS):
                rows = [[item_id, sorted(set(ns))] for item_id, ns in items[i:i + BATCH_ROWS]]
                found = self.store._restore_write("UNWIND $rows AS row MATCH (c:CI {id: row[0]})"
                                                  " SET c.ev = coalesce(c.ev, []) + row[1] RETURN count(*) AS n", rows)
                if found != len(rows):
                    self.store._restore_write(
                        "UNWIND $rows AS row WITH row WHERE NOT EXISTS { MATCH (c:CI {id: row[0]}) }"
                        " MERGE (x:EventIndex {id: row[0]}) SET x.ev = coalesce(x.ev, []) + row[1]", rows)
        if self.scopes:
            self.store._restore_write(
                "UNWIND $rows AS row MERGE (x:SightScope {sk: row.sk})"
                " ON CREATE SET x.source = row.source, x.scope = row.scope", list(self.scopes.values()))
        self.store._write(f"MATCH (m:CmdbMeta {{name: 'store'}}) SET m.seq = $seq, {BUMP_WRITES}", seq=self.max_seq)

    def attach_sightings(self) -> None:
        """Every item's ``sg``, and the scope members lifecycle looks up."""
        by_label: dict[str, list[list[Any]]] = {}
        members: dict[tuple[str, str, str], list[str]] = {}
        for (kind, item_id), sg in self.sights.items():
            if kind == "ci":
                label = ""
            elif item_id in self.rel_labels:
                label = self.rel_labels[item_id]
            else:
                raise BadInputError(f"a sighting of the dump names relationship {item_id}, which the dump does not"
                                    " hold")
            by_label.setdefault(label, []).append([item_id, sorted(sg.values())])
            for key in sg:
                source, scope, _ = key.split(SEP)
                members.setdefault((dump_json([source, scope]), kind, label), []).append(item_id)
        for label, rows in by_label.items():
            match = (f"MATCH ()-[x:{label} {{id: row[0]}}]->() USING INDEX SEEK x:{label}(id)" if label
                     else "MATCH (x:CI {id: row[0]})")
            for i in range(0, len(rows), BATCH_ROWS):
                chunk = rows[i:i + BATCH_ROWS]
                made = self.store._restore_write(f"UNWIND $rows AS row {match} SET x.sg = row[1] RETURN count(*) AS n",
                                                 chunk)
                if made != len(chunk):
                    raise BadInputError(f"{len(chunk) - made} sighting(s) of the dump name an item the dump does not"
                                        " hold")
        rows = [[sk, kind, label, ids[i:i + BATCH_ROWS]] for (sk, kind, label), ids in members.items()
                for i in range(0, len(ids), BATCH_ROWS)]
        for i in range(0, len(rows), 100):
            self.store._restore_write("UNWIND $rows AS row CREATE (:SightMembers {sk: row[0], kind: row[1],"
                                      " label: row[2], ids: row[3]})", rows[i:i + 100])

    def row(self, kind: str, row: dict[str, Any]) -> Any:
        """The node (or relationship) properties for one dump row; None for what is attached later."""
        if kind == "ci":
            name = row.get("name")
            attrs = json.loads(row["attrs"])
            prov = parse_provenance(row.get("provenance") or "{}", attrs, row["class"])
            return {"id": row["id"], "class": row["class"], "name": name, "name_lc": (name or "").lower(),
                    "status": row["status"], "attrs": row["attrs"], "aidx": attr_tokens(attrs),
                    "created_at": row["created_at"], "updated_at": row["updated_at"],
                    "provenance": prov_blob(prov, attrs, row["class"])}
        if kind == "ci_key":
            return {"key": row["key"], "ci_id": row["ci_id"]}
        if kind == "sighting":
            if row["kind"] not in ("ci", "rel"):
                raise ValueError(f"sighting kind {row['kind']!r} is neither ci nor rel")
            s = Sighting(row["source"], row["scope"], row["first_seen"], row["last_seen"], row["last_run"],
                         int(row["missed"]), row["status"])
            sk = dump_json([row["source"], row["scope"]])
            self.scopes[sk] = {"sk": sk, "source": row["source"], "scope": row["scope"]}
            self.sights.setdefault((row["kind"], str(row["item_id"])), {})[sight_key(s.source, s.scope)] = \
                sight_entry(s)
            return None
        if kind == "rel":
            label = self.store._rel_label(row["type"])
            self.rel_labels[row["id"]] = label
            return {"src": row["src"], "dst": row["dst"], "label": label,
                    "props": {"id": row["id"], "type": row["type"], "attrs": row["attrs"], "status": row["status"],
                              "created_at": row["created_at"], "updated_at": row["updated_at"]}}
        if kind == "event":
            seq = int(row["seq"]) if row.get("seq") is not None else self.max_seq + 1
            self.max_seq = max(self.max_seq, seq)
            return [seq, row["at"], row.get("ci_id"), row.get("peer_id"), row["kind"], row["source"],
                    row.get("run_id"), row.get("rel_id"), row.get("attr"), load_json(row.get("old")),
                    load_json(row.get("new")), row.get("actor")]
        if kind == "conflict":
            return {k: row[k] for k in ("id", "at", "source", "run_id", "item", "item_class", "keys", "ci_ids",
                                        "attrs")}
        if kind == "discovery_run":
            return {k: row[k] for k in ("run_id", "method", "started_at", "data")}
        return {"run_id": row["run_id"], "source": row["source"], "scope": row.get("scope"),
                "complete": bool(row["complete"]), "started_at": row["started_at"], "ended_at": row["ended_at"],
                "actor": row.get("actor"), "stats": row.get("stats") or "{}"}

    def flush(self, kind: str) -> None:
        store = self.store
        if kind == "rel":
            self.flush("ci")  # relationships need their CIs in place
        rows, self.pending[kind] = self.pending[kind], []
        if not rows:
            return
        if kind == "ci":
            by_label: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_label.setdefault(store._class_label(row["class"]), []).append(row)
            for label, group in by_label.items():
                store._restore_write(f"UNWIND $rows AS row CREATE (c:CI{label}) SET c = row", group)
        elif kind == "rel":
            by_type: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_type.setdefault(row.pop("label"), []).append(row)
            for rtype, group in by_type.items():
                made = store._restore_write(
                    "UNWIND $rows AS row MATCH (a:CI {id: row.src}) MATCH (b:CI {id: row.dst})"
                    f" CREATE (a)-[r:{rtype}]->(b) SET r = row.props RETURN count(r) AS n", group)
                if made != len(group):
                    raise BadInputError(f"{len(group) - made} {rtype} relationship(s) of the dump name a CI the"
                                        " dump does not hold (CIs must come before relationships)")
        elif kind == "event":
            packs = []
            for i in range(0, len(rows), EVENTS_PER_PACK):
                chunk = rows[i:i + EVENTS_PER_PACK]
                n = min(e[0] for e in chunk)
                packs.append([n, min(e[1] for e in chunk), max(e[1] for e in chunk), len(chunk), pack_text(chunk)])
                for e in chunk:
                    for item_id in (e[2], e[3]):
                        if item_id is not None:
                            refs = self.ev.setdefault(item_id, [])
                            if not refs or refs[-1] != n:
                                refs.append(n)
            store._restore_write("UNWIND $rows AS row CREATE (:EventPack {n: row[0], at0: row[1], at1: row[2],"
                                 " k: row[3], b: row[4]})", packs)
        else:
            label = {"ci_key": "CIKey", "conflict": "Conflict", "run": "Run", "discovery_run": "DiscoveryRun"}[kind]
            store._restore_write(f"UNWIND $rows AS row CREATE (n:{label}) SET n = row", rows)
