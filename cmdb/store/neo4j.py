"""The Neo4j store: the same contract as the SQLite store, for estates that outgrow one box.

Data model (every name below is fixed text or comes from a whitelist; input never reaches Cypher
except as parameters):

* ``(:CI:<Class>)`` per CI. The class label is added only for classes of the store's schema whose
  names are CamelCase; ``class`` is also a property and is what queries use. ``attrs`` and
  ``provenance`` are JSON strings so any value round-trips exactly; ``aidx`` is a list of
  ``attr=value`` tokens so attribute-equality search runs on the server without JSON parsing.
* ``(:CIKey {key, ci_id})`` per identity key, unique by constraint.
* ``(a)-[:TYPE {id, type, attrs, ...}]->(b)`` per relationship; the Neo4j type comes from the
  schema's relationship whitelist (``CMDB_OTHER`` holds types outside it, ``r.type`` is the truth).
  The id is unique by a constraint per type.
* ``(:Sighting {sid, ss, v})`` per (item, source, scope), because lifecycle asks "what did this
  source see in these scopes", which needs an index, not JSON. ``sid`` is kind, item, source and
  scope joined by U+001F (an item's sightings are a prefix seek), ``ss`` the (source, scope) pair
  and ``v`` the rest as JSON: few properties per record is what makes Neo4j write fast.
  ``(:SightScope {sk, source, scope})`` registers which scopes a source has sightings in.
* ``(:Event {seq, at, ci_id, peer_id, b})`` with the rest of the event in ``b`` (JSON), for the
  same reason; ``(:Run)``, ``(:Conflict)``; ``(:CmdbMeta {name: 'store'})`` holds the
  event counter. Every write transaction first writes that node, so its lock serialises writers
  exactly as SQLite's ``BEGIN IMMEDIATE`` does: a plan's reads stay true until its commit.

Each batch is one managed transaction (``execute_write``): the driver retries transient failures
and re-runs the plan, which only reads. Driver exceptions become ``StoreError`` /
``StoreUnavailableError`` here, with the original chained.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs, urlsplit

import neo4j
from neo4j import exceptions as nx

from cmdb.errors import BadInputError, CmdbError, ConfigError, StoreError, StoreUnavailableError
from cmdb.model import Schema, default_schema
from cmdb.store.base import (
    AttrValue,
    BatchReader,
    ChangeSet,
    CIState,
    Conflict,
    Direction,
    DiscoveryRunRecord,
    Event,
    Page,
    RelState,
    RunRecord,
    SearchQuery,
    Sighting,
)

SCHEMA_VERSION = 1
BATCH_ROWS = 5000
OTHER_REL = "CMDB_OTHER"
STORE_LABELS = ("CI", "CIKey", "Sighting", "SightScope", "Event", "Run", "Conflict")
TABLES = ("ci", "ci_key", "sighting", "rel", "event", "conflict", "run", "discovery_run")

_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_REL_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_CI_MAP = "c {.id, .class, .name, .status, .attrs, .created_at, .updated_at, .provenance}"
SEP = "\x1f"
_CI_SIGHTS = ("COLLECT { MATCH (s:Sighting) WHERE s.sid STARTS WITH 'ci\\u001f' + c.id + '\\u001f'"
              " RETURN [s.sid, s.v] }")
_REL_MAP = "r {.id, .type, .attrs, .status, .created_at, .updated_at}"
_REL_SIGHTS = ("COLLECT { MATCH (s:Sighting) WHERE s.sid STARTS WITH 'rel\\u001f' + r.id + '\\u001f'"
               " RETURN [s.sid, s.v] }")
_LOAD_CIS = f"UNWIND $ids AS id MATCH (c:CI {{id: id}}) RETURN {_CI_MAP} AS ci, {_CI_SIGHTS} AS sights"
_LOCK = (
    "MERGE (m:CmdbMeta {name: 'store'}) ON CREATE SET m.seq = 0, m.schema_version = $version"
    " SET m.writes = coalesce(m.writes, 0) + 1 RETURN m.seq AS seq, m.restoring AS restoring"
)


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
"""The SQLite store's JSON form, so dumps of both stores carry identical strings."""


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _token(attr: str, value: Any) -> str | None:
    """One search token; numbers and booleans compare by value as SQLite's json_each does."""
    if value is None or isinstance(value, list | dict):
        return None
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        value = int(value)
    if isinstance(value, int | float):
        return f"{attr}=n:{value!r}"
    return f"{attr}=s:{value}"


def attr_tokens(attrs: dict[str, Any]) -> list[str]:
    """Tokens for every scalar of every attribute (list elements and mapping values included)."""
    out: set[str] = set()
    for attr, value in attrs.items():
        elems = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for elem in elems:
            tok = _token(attr, elem)
            if tok is not None:
                out.add(tok)
    return sorted(out)


def _sight_row(kind: str, item_id: str, s: Sighting) -> dict[str, Any]:
    """A Sighting node's properties."""
    return {"sid": SEP.join((kind, item_id, s.source, s.scope)), "ss": _dumps([s.source, s.scope]),
            "v": _dumps([s.first_seen, s.last_seen, s.last_run, s.missed, s.status])}


def _parse_sighting(sid: str, v: str) -> tuple[str, str, Sighting]:
    """(kind, item id, sighting) from a Sighting node."""
    kind, item_id, source, scope = sid.split(SEP)
    first_seen, last_seen, last_run, missed, status = json.loads(v)
    return kind, item_id, Sighting(source, scope, first_seen, last_seen, last_run, int(missed), status)


def _prov_blob(prov: dict[str, dict[str, AttrValue]]) -> str:
    """One JSON map per CI, {attr: {source: [value, run_id, set_at]}}, as the SQLite store keeps it."""
    return _dumps({a: {s: [v.value, v.run_id, v.set_at] for s, v in srcs.items()} for a, srcs in prov.items()})


def _provenance(blob: str | None) -> dict[str, dict[str, AttrValue]]:
    out: dict[str, dict[str, AttrValue]] = {}
    for attr, by_source in (_loads(blob) or {}).items():
        out[attr] = {src: AttrValue(src, v[0], v[1], v[2]) for src, v in by_source.items()}
    return out


def _ci_state(ci: dict[str, Any], sights: list[list[str]]) -> CIState:
    state = CIState(ci["id"], ci["class"], ci["name"], ci["status"], json.loads(ci["attrs"]), ci["created_at"],
                    ci["updated_at"], _provenance(ci["provenance"]))
    for sid, v in sights:
        s = _parse_sighting(sid, v)[2]
        state.sightings[(s.source, s.scope)] = s
    return state


def _rel_state(r: dict[str, Any], src: str, dst: str, sights: list[list[str]] | None = None) -> RelState:
    rel = RelState(r["id"], r["type"], src, dst, json.loads(r["attrs"]), r["status"], r["created_at"],
                   r["updated_at"])
    for sid, v in sights or ():
        s = _parse_sighting(sid, v)[2]
        rel.sightings[(s.source, s.scope)] = s
    return rel


def _last_wins(items: Iterable[Any], key: Callable[[Any], Any]) -> list[Any]:
    """Later writes of one key replace earlier ones, as SQLite's ordered statements do."""
    out: dict[Any, Any] = {}
    for item in items:
        out.pop(key(item), None)
        out[key(item)] = item
    return list(out.values())


def read_password() -> str:
    """The Neo4j password from ``CMDB_NEO4J_PASSWORD`` or the 0600 file named by ``CMDB_NEO4J_PASSWORD_FILE``."""
    value = os.environ.get("CMDB_NEO4J_PASSWORD")
    if value:
        return value
    path = os.environ.get("CMDB_NEO4J_PASSWORD_FILE")
    if not path:
        raise ConfigError(
            "no Neo4j password: set CMDB_NEO4J_PASSWORD, or CMDB_NEO4J_PASSWORD_FILE to a file with mode 0600"
        )
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{path} (CMDB_NEO4J_PASSWORD_FILE) is open to other users; chmod 600 {path}")
        with open(path, encoding="utf-8") as fh:
            secret = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read CMDB_NEO4J_PASSWORD_FILE {path}: {exc.strerror}") from None
    if not secret:
        raise ConfigError(f"{path} (CMDB_NEO4J_PASSWORD_FILE) is empty")
    return secret


class Neo4jStore:
    """GraphStore on a Neo4j 5 server, through the official driver."""

    @classmethod
    def from_url(cls, url: str, *, schema: Schema | None = None) -> Neo4jStore:
        """``neo4j://user@host:7687[?database=name]``; the password never appears in the URL."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ConfigError("the Neo4j store URL is malformed; use neo4j://user@host:7687") from None
        if parts.password is not None:
            raise ConfigError(
                "the Neo4j store URL must not contain a password; put it in CMDB_NEO4J_PASSWORD or in a 0600 file"
                " named by CMDB_NEO4J_PASSWORD_FILE and use neo4j://user@host:7687"
            )
        if not parts.hostname:
            raise ConfigError(f"the Neo4j store URL {url!r} names no host; use neo4j://user@host:7687")
        if parts.path not in ("", "/") or parts.fragment:
            raise ConfigError(f"the Neo4j store URL {url!r} has a path; use neo4j://user@host:7687?database=name")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"database"}
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))} in the Neo4j store URL; "
                              "only ?database=name is understood")
        database = query.get("database", ["neo4j"])[-1] or "neo4j"
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        uri = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
        return cls(uri, parts.username or "neo4j", read_password(), database, schema=schema)

    def __init__(
        self,
        uri: str,
        user: str,
        password: str,
        database: str = "neo4j",
        *,
        schema: Schema | None = None,
        max_retry_time: float = 30.0,
        connection_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(uri)
        host = parts.netloc.rsplit("@", 1)[-1]  # drop any user info: credentials travel in auth only
        self._uri = f"{parts.scheme}://{host}"
        self.user = user
        self.database = database
        self.url = f"{parts.scheme}://{user}@{host}" + ("" if database == "neo4j" else f"?database={database}")
        schema = schema or default_schema()
        reserved = {*STORE_LABELS, "CmdbMeta"}
        self._class_labels = sorted(c for c in schema.classes if _CLASS_NAME.fullmatch(c) and c not in reserved)
        self._rel_types = sorted(t for t in schema.relationships if _REL_NAME.fullmatch(t) and t != OTHER_REL)
        try:
            self._driver = neo4j.GraphDatabase.driver(
                self._uri,
                auth=(user, password),
                max_transaction_retry_time=max_retry_time,
                connection_timeout=connection_timeout,
                notifications_min_severity="OFF",
            )
            self._driver.verify_connectivity()
        except (nx.Neo4jError, nx.DriverError, ValueError) as exc:
            raise self._translate(exc, "connecting") from exc
        try:
            self._ensure_schema()
        except BaseException:
            self._driver.close()
            raise

    # -- plumbing -------------------------------------------------------------------------------
    def _translate(self, exc: Exception, doing: str) -> StoreError:
        """Our error for a driver error; the message names the server and what to do."""
        where = f"Neo4j at {self.url}"
        if isinstance(exc, nx.AuthError):
            return StoreUnavailableError(
                f"{where} refused user {self.user!r} while {doing}: authentication failed; check the password"
                " in CMDB_NEO4J_PASSWORD or CMDB_NEO4J_PASSWORD_FILE"
            )
        if isinstance(exc, nx.IncompleteCommit):
            return StoreUnavailableError(
                f"{where} went away during the commit while {doing}; the batch may or may not have been written."
                " Re-run it when the server is back: ingest is idempotent"
            )
        if isinstance(exc, nx.ServiceUnavailable | nx.SessionExpired):
            return StoreUnavailableError(
                f"{where} is unreachable while {doing} ({exc}); nothing of the failed transaction was written."
                " Check that the server runs and listens there"
            )
        if isinstance(exc, nx.TransientError):
            return StoreError(f"{where} kept failing while {doing}, even after retries: {exc}; nothing was written")
        if isinstance(exc, nx.ConstraintError):
            return StoreError(f"{where} rejected a write while {doing}: {exc}; nothing was written")
        if isinstance(exc, ValueError):
            return StoreUnavailableError(f"cannot connect to {where}: {exc}")
        return StoreError(f"{where} failed while {doing}: {exc}; nothing of the failed transaction was written")

    def _read(self, query: str, **params: Any) -> list[neo4j.Record]:
        try:
            records, _, _ = self._driver.execute_query(
                query, params, database_=self.database, routing_=neo4j.RoutingControl.READ
            )
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "reading") from exc
        return list(records)

    def _write(self, query: str, **params: Any) -> list[neo4j.Record]:
        try:
            records, _, _ = self._driver.execute_query(query, params, database_=self.database)
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "writing") from exc
        return list(records)

    def _autocommit(self, query: str, doing: str, **params: Any) -> None:
        """For ``CALL { } IN TRANSACTIONS`` and schema commands, which need an implicit transaction."""
        try:
            with self._driver.session(database=self.database) as session:
                session.run(query, params).consume()
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, doing) from exc

    def _ensure_schema(self) -> None:
        """Constraints and indexes, created once; later opens only list them."""
        wanted = {
            "cmdb_ci_id": "CREATE CONSTRAINT cmdb_ci_id IF NOT EXISTS FOR (n:CI) REQUIRE n.id IS UNIQUE",
            "cmdb_ci_key": "CREATE CONSTRAINT cmdb_ci_key IF NOT EXISTS FOR (n:CIKey) REQUIRE n.key IS UNIQUE",
            "cmdb_sighting": "CREATE CONSTRAINT cmdb_sighting IF NOT EXISTS FOR (n:Sighting) REQUIRE n.sid IS UNIQUE",
            "cmdb_sight_scope":
                "CREATE CONSTRAINT cmdb_sight_scope IF NOT EXISTS FOR (n:SightScope) REQUIRE n.sk IS UNIQUE",
            "cmdb_run_id": "CREATE CONSTRAINT cmdb_run_id IF NOT EXISTS FOR (n:Run) REQUIRE n.run_id IS UNIQUE",
            "cmdb_conflict_id":
                "CREATE CONSTRAINT cmdb_conflict_id IF NOT EXISTS FOR (n:Conflict) REQUIRE n.id IS UNIQUE",
            "cmdb_meta": "CREATE CONSTRAINT cmdb_meta IF NOT EXISTS FOR (n:CmdbMeta) REQUIRE n.name IS UNIQUE",
            "cmdb_ci_class": "CREATE INDEX cmdb_ci_class IF NOT EXISTS FOR (n:CI) ON (n.class)",
            "cmdb_ci_status": "CREATE INDEX cmdb_ci_status IF NOT EXISTS FOR (n:CI) ON (n.status)",
            "cmdb_ci_name": "CREATE INDEX cmdb_ci_name IF NOT EXISTS FOR (n:CI) ON (n.name_lc)",
            "cmdb_sighting_scope": "CREATE INDEX cmdb_sighting_scope IF NOT EXISTS FOR (n:Sighting) ON (n.ss)",
            "cmdb_sight_scope_source":
                "CREATE INDEX cmdb_sight_scope_source IF NOT EXISTS FOR (n:SightScope) ON (n.source)",
            "cmdb_event_ci": "CREATE INDEX cmdb_event_ci IF NOT EXISTS FOR (n:Event) ON (n.ci_id)",
            "cmdb_event_peer": "CREATE INDEX cmdb_event_peer IF NOT EXISTS FOR (n:Event) ON (n.peer_id)",
            "cmdb_event_at": "CREATE INDEX cmdb_event_at IF NOT EXISTS FOR (n:Event) ON (n.at)",
            "cmdb_discovery_run":
                "CREATE CONSTRAINT cmdb_discovery_run IF NOT EXISTS FOR (n:DiscoveryRun) REQUIRE n.run_id IS UNIQUE",
            "cmdb_run_source": "CREATE INDEX cmdb_run_source IF NOT EXISTS FOR (n:Run) ON (n.source)",
        }
        for rtype in [*self._rel_types, OTHER_REL]:
            name = f"cmdb_rel_{rtype.lower()}"
            wanted[name] = f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR ()-[r:{rtype}]-() REQUIRE r.id IS UNIQUE"
        have = {r["name"] for r in self._read("SHOW INDEXES YIELD name RETURN name")}
        have |= {r["name"] for r in self._read("SHOW CONSTRAINTS YIELD name RETURN name")}
        missing = [ddl for name, ddl in wanted.items() if name not in have]
        for ddl in missing:
            try:
                self._autocommit(ddl, "creating the schema")
            except StoreError as exc:
                # Another process may have created an equivalent one meanwhile.
                if not isinstance(exc.__cause__, nx.ClientError):
                    raise
        if missing:
            self._autocommit("CALL db.awaitIndexes(600)", "waiting for indexes")
        self._write(
            "MERGE (m:CmdbMeta {name: 'store'}) ON CREATE SET m.seq = 0, m.schema_version = $version",
            version=SCHEMA_VERSION,
        )

    def _class_label(self, cls: str) -> str:
        return f":{cls}" if cls in self._class_labels else ""

    def _rel_label(self, rtype: str) -> str:
        return rtype if rtype in self._rel_types else OTHER_REL

    def _type_pattern(self, types: list[str] | None) -> tuple[str, str]:
        """(``:A|B`` for the pattern, extra WHERE text) restricting relationships to ``types``."""
        if types is None:
            return "", ""
        labels = sorted({self._rel_label(t) for t in types})
        extra = " AND r.type IN $types" if OTHER_REL in labels else ""
        return ":" + "|".join(labels), extra

    # -- writing --------------------------------------------------------------------------------
    def write_batch(self, plan: Callable[[BatchReader], ChangeSet]) -> ChangeSet:
        def work(tx: neo4j.ManagedTransaction) -> ChangeSet:
            meta = tx.run(_LOCK, version=SCHEMA_VERSION).single(strict=True)
            if meta["restoring"]:
                raise StoreError(f"{self.url} holds an unfinished restore; clear it and restore again")
            cs = plan(_TxReader(tx, [*self._rel_types, OTHER_REL]))
            self._apply(tx, cs, int(meta["seq"] or 0))
            return cs

        try:
            with self._driver.session(database=self.database) as session:
                result: ChangeSet = session.execute_write(work)
                return result
        except CmdbError:
            raise
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "writing a batch") from exc

    def _apply(self, tx: neo4j.ManagedTransaction, cs: ChangeSet, seq: int) -> None:
        """The change set as one UNWIND statement per record kind (and per label or type)."""
        def run(query: str, **params: Any) -> None:
            tx.run(query, params).consume()

        new_ci_ids = {c.id for c in cs.cis_new}
        new_rel_ids = {r.id for r in cs.rels_new}
        by_label: dict[str, list[list[Any]]] = {}
        for c in cs.cis_new:
            by_label.setdefault(self._class_label(c.cls), []).append(
                [c.id, c.cls, c.name, (c.name or "").lower(), c.status, _dumps(c.attrs), attr_tokens(c.attrs),
                 c.created_at, c.updated_at, _prov_blob(c.provenance)]
            )
        for label, group in by_label.items():
            # Lists, not maps, as rows: less to pack and unpack per item.
            run(f"UNWIND $rows AS row CREATE (c:CI{label} {{id: row[0], class: row[1], name: row[2],"
                " name_lc: row[3], status: row[4], attrs: row[5], aidx: row[6], created_at: row[7],"
                " updated_at: row[8], provenance: row[9]})", rows=group)

        changed: dict[str, list[dict[str, Any]]] = {}
        for c in _last_wins(cs.cis_changed, lambda c: c.id):
            changed.setdefault(self._class_label(c.cls), []).append(
                {"id": c.id, "class": c.cls, "name": c.name, "name_lc": (c.name or "").lower(), "status": c.status,
                 "attrs": _dumps(c.attrs), "aidx": attr_tokens(c.attrs), "updated_at": c.updated_at,
                 "provenance": _prov_blob(c.provenance)}
            )
        all_labels = ":".join(self._class_labels)
        for label, rows in changed.items():
            relabel = f" REMOVE c:{all_labels}" if all_labels else ""
            run(
                "UNWIND $rows AS row MATCH (c:CI {id: row.id}) WITH c, row, c.class AS old"
                " SET c.class = row.class, c.name = row.name, c.name_lc = row.name_lc, c.status = row.status,"
                " c.attrs = row.attrs, c.aidx = row.aidx, c.updated_at = row.updated_at, c.provenance = row.provenance"
                f" WITH c, row, old WHERE old <> row.class{relabel}" + (f" SET c{label}" if label else ""),
                rows=rows,
            )
        if cs.keys:
            run("UNWIND $rows AS row CREATE (:CIKey {key: row[0], ci_id: row[1]})", rows=[list(k) for k in cs.keys])

        sight_new: list[dict[str, Any]] = []
        sight_old: list[dict[str, Any]] = []
        scopes: dict[str, dict[str, str]] = {}
        for w in _last_wins(cs.sightings, lambda w: (w.kind, w.item_id, w.sighting.source, w.sighting.scope)):
            s = w.sighting
            if SEP in s.scope or SEP in s.source:
                raise BadInputError(f"scope {s.scope!r} of source {s.source!r} contains U+001F; use printable text")
            row = _sight_row(w.kind, w.item_id, s)
            is_new = w.item_id in (new_ci_ids if w.kind == "ci" else new_rel_ids)
            (sight_new if is_new else sight_old).append(row)
            scopes[_dumps([s.source, s.scope])] = {"sk": _dumps([s.source, s.scope]), "source": s.source,
                                                   "scope": s.scope}
        if sight_new:
            run("UNWIND $rows AS row CREATE (s:Sighting {sid: row.sid, ss: row.ss, v: row.v})", rows=sight_new)
        if sight_old:
            run("UNWIND $rows AS row MERGE (s:Sighting {sid: row.sid}) SET s.ss = row.ss, s.v = row.v",
                rows=sight_old)
        if scopes:
            run("UNWIND $rows AS row MERGE (x:SightScope {sk: row.sk})"
                " ON CREATE SET x.source = row.source, x.scope = row.scope", rows=list(scopes.values()))

        rels_new: dict[str, list[list[Any]]] = {}
        for r in cs.rels_new:
            rels_new.setdefault(self._rel_label(r.type), []).append(
                [r.src, r.dst, r.id, r.type, _dumps(r.attrs), r.status, r.created_at, r.updated_at]
            )
        for rtype, new_rels in rels_new.items():
            made = tx.run(
                "UNWIND $rows AS row MATCH (a:CI {id: row[0]}) MATCH (b:CI {id: row[1]})"
                f" CREATE (a)-[r:{rtype} {{id: row[2], type: row[3], attrs: row[4], status: row[5],"
                " created_at: row[6], updated_at: row[7]}]->(b) RETURN count(r) AS n",
                rows=new_rels,
            ).single(strict=True)["n"]
            if made != len(new_rels):
                raise StoreError(f"{len(new_rels) - made} new {rtype} relationship(s) name a CI that does not exist "
                                 f"in {self.url}; nothing of this batch was written")
        rels_changed: dict[str, list[dict[str, Any]]] = {}
        for r in _last_wins(cs.rels_changed, lambda r: r.id):
            rels_changed.setdefault(self._rel_label(r.type), []).append(
                {"id": r.id, "attrs": _dumps(r.attrs), "status": r.status, "updated_at": r.updated_at}
            )
        for rtype, rows in rels_changed.items():
            run(f"UNWIND $rows AS row MATCH ()-[r:{rtype} {{id: row.id}}]->() USING INDEX r:{rtype}(id)"
                " SET r.attrs = row.attrs, r.status = row.status, r.updated_at = row.updated_at", rows=rows)

        if cs.events:
            dumps = _dumps
            events = [[seq + i, e.at, e.ci_id, e.peer_id,
                       dumps([e.kind, e.source, e.run_id, e.rel_id, e.attr, e.old, e.new, e.actor])]
                      for i, e in enumerate(cs.events, start=1)]
            run("UNWIND $rows AS row CREATE (e:Event {seq: row[0], at: row[1], ci_id: row[2], peer_id: row[3],"
                " b: row[4]})", rows=events)
            run("MATCH (m:CmdbMeta {name: 'store'}) SET m.seq = $seq", seq=seq + len(events))
        if cs.conflicts:
            run("UNWIND $rows AS row MERGE (c:Conflict {id: row.id}) SET c = row",
                rows=[_conflict_row(c) for c in cs.conflicts])
        ledger = cs.run
        run("MERGE (x:Run {run_id: $row.run_id}) SET x = $row",
            row={"run_id": ledger.run_id, "source": ledger.source, "scope": ledger.scope,
                 "complete": bool(ledger.complete), "started_at": ledger.started_at, "ended_at": ledger.ended_at,
                 "actor": ledger.actor, "stats": _dumps(ledger.stats)})

    # -- reading --------------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> CIState | None:
        return self.get_cis([ci_id]).get(ci_id)

    def get_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        ids = list(ids)
        if not ids:
            return {}
        return {r["ci"]["id"]: _ci_state(r["ci"], r["sights"]) for r in self._read(_LOAD_CIS, ids=ids)}

    def find_by_name(self, name: str) -> list[str]:
        rows = self._read("MATCH (c:CI {name_lc: $n}) RETURN c.id AS id ORDER BY id", n=name.lower())
        return [r["id"] for r in rows]

    def find_by_key(self, key: str) -> str | None:
        rows = self._read("MATCH (k:CIKey {key: $k}) RETURN k.ci_id AS id", k=key)
        return str(rows[0]["id"]) if rows else None

    def search(self, query: SearchQuery) -> Page:
        where = ["true"]
        params: dict[str, Any] = {}
        if query.classes:
            where.append("c.class IN $classes")
            params["classes"] = list(query.classes)
        if query.status:
            where.append("c.status = $status")
            params["status"] = query.status
        if query.text:
            where.append("c.name_lc CONTAINS $text")
            params["text"] = query.text.lower()
        tokens: list[str] = []
        for attr, value in query.attrs.items():
            if not _ATTR_NAME.fullmatch(attr):
                raise BadInputError(f"cannot filter on {attr!r}: attribute names are letters, digits and _")
            if isinstance(value, list | dict):
                raise BadInputError(f"cannot filter {attr} on a list or mapping; give one value")
            tok = _token(attr, value)
            if tok is None:
                where.append("false")
            else:
                tokens.append(tok)
        if tokens:
            where.append("all(t IN $tokens WHERE t IN c.aidx)")
            params["tokens"] = tokens
        clause = " AND ".join(where)
        total = int(self._read(f"MATCH (c:CI) WHERE {clause} RETURN count(c) AS n", **params)[0]["n"])
        page = f" SKIP {max(int(query.offset), 0)}" + (f" LIMIT {int(query.limit)}" if query.limit >= 0 else "")
        rows = self._read(
            f"MATCH (c:CI) WHERE {clause} WITH c ORDER BY c.class, c.name_lc, c.id{page}"
            f" RETURN {_CI_MAP} AS ci, {_CI_SIGHTS} AS sights",
            **params,
        )
        return Page([_ci_state(r["ci"], r["sights"]) for r in rows], total, query.limit, query.offset)

    def relationships(
        self,
        ci_id: str | None = None,
        type: str | None = None,
        direction: Direction = "both",
        include_retired: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[RelState]:
        pattern, extra = self._type_pattern([type] if type is not None else None)
        status = "" if include_retired else " AND r.status <> 'retired'"
        cond = f"WHERE true{status}{extra}"
        if ci_id is None:
            match = f"MATCH (a:CI)-[r{pattern}]->(b:CI) {cond}"
        elif direction == "out":
            match = f"MATCH (a:CI {{id: $ci}})-[r{pattern}]->(b:CI) {cond}"
        elif direction == "in":
            match = f"MATCH (a:CI)-[r{pattern}]->(b:CI {{id: $ci}}) {cond}"
        else:
            match = (f"CALL () {{ MATCH (a:CI {{id: $ci}})-[r{pattern}]->(b:CI) {cond} RETURN a, r, b"
                     f" UNION MATCH (a:CI)-[r{pattern}]->(b:CI {{id: $ci}}) {cond} RETURN a, r, b }}")
        page = f" SKIP {max(int(offset), 0)}" + (f" LIMIT {int(limit)}" if limit >= 0 else "")
        rows = self._read(
            f"{match} RETURN {_REL_MAP} AS r, a.id AS src, b.id AS dst ORDER BY r.type, src, dst{page}",
            ci=ci_id, types=[type],
        )
        return [_rel_state(r["r"], r["src"], r["dst"]) for r in rows]

    def neighbors(
        self, ids: Iterable[str], types: Iterable[str] | None = None, direction: Direction = "out"
    ) -> list[RelState]:
        ids = list(ids)
        type_list = None if types is None else list(types)
        if not ids or type_list == []:
            return []
        pattern, extra = self._type_pattern(type_list)
        cond = f"WHERE r.status <> 'retired'{extra}"
        parts = []
        if direction in ("out", "both"):
            parts.append(f"UNWIND $ids AS id MATCH (a:CI {{id: id}})-[r{pattern}]->(b) {cond} RETURN a, r, b")
        if direction in ("in", "both"):
            parts.append(f"UNWIND $ids AS id MATCH (a)-[r{pattern}]->(b:CI {{id: id}}) {cond} RETURN a, r, b")
        rows = self._read(
            f"CALL () {{ {' UNION '.join(parts)} }}"
            f" RETURN DISTINCT {_REL_MAP} AS r, a.id AS src, b.id AS dst ORDER BY r.type, src, dst",
            ids=ids, types=type_list,
        )
        return [_rel_state(r["r"], r["src"], r["dst"]) for r in rows]

    def reachable(
        self, start_ids: list[str], types_out: list[str], types_in: list[str], max_depth: int | None = None
    ) -> set[str]:
        """CIs reached from ``start_ids`` over non-retired edges, ``types_out`` followed from source to
        target and ``types_in`` from target to source; the starts only if a path leads back to them.

        One breadth-first query on the server when every hop goes the same way. Mixed directions
        cannot be inlined into Neo4j's breadth-first shortest-path operator (the planner then
        enumerates paths), so those expand one frontier per query instead.
        """
        if not start_ids or not (types_out or types_in) or (max_depth is not None and max_depth < 1):
            return set()
        depth = "+" if max_depth is None else f"{{1,{int(max_depth)}}}"
        if not types_in:
            hop = "-[r{p}]->"
        elif not types_out:
            hop = "<-[r{p}]-"
        else:
            return self._reachable_by_frontier(start_ids, types_out, types_in, max_depth)
        pattern, extra = self._type_pattern([*types_out, *types_in])
        rows = self._read(
            "UNWIND $ids AS id MATCH (s:CI {id: id})"
            f" MATCH ANY SHORTEST (s)((x){hop.format(p=pattern)}(y) WHERE r.status <> 'retired'{extra}){depth}(t)"
            " RETURN DISTINCT t.id AS id",
            ids=list(start_ids), types=[*types_out, *types_in],
        )
        return {r["id"] for r in rows}

    def _reachable_by_frontier(
        self, start_ids: list[str], types_out: list[str], types_in: list[str], max_depth: int | None
    ) -> set[str]:
        out_pat, out_extra = self._type_pattern(types_out)
        in_pat, in_extra = self._type_pattern(types_in)
        query = (
            "UNWIND $ids AS id MATCH (a:CI {id: id}) CALL (a) {"
            f" MATCH (a)-[r{out_pat}]->(b) WHERE r.status <> 'retired'{out_extra.replace('$types', '$out')}"
            " RETURN b UNION"
            f" MATCH (a)<-[r{in_pat}]-(b) WHERE r.status <> 'retired'{in_extra.replace('$types', '$in')}"
            " RETURN b } RETURN DISTINCT b.id AS id"
        )
        reached: set[str] = set()
        frontier = set(start_ids)
        depth = 0
        while frontier and (max_depth is None or depth < max_depth):
            found = {r["id"] for r in self._read(query, ids=sorted(frontier), out=types_out, **{"in": types_in})}
            frontier = found - reached
            reached |= found
            depth += 1
        return reached

    def events(
        self,
        ci_ids: Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        params: dict[str, Any] = {"since": since, "until": until}
        if ci_ids is None:
            match = "MATCH (e:Event)"
        else:
            params["ids"] = list(ci_ids)
            match = ("CALL () { MATCH (e:Event) WHERE e.ci_id IN $ids RETURN e"
                     " UNION MATCH (e:Event) WHERE e.peer_id IN $ids RETURN e }")
        cond = " WITH e WHERE ($since IS NULL OR e.at >= $since) AND ($until IS NULL OR e.at <= $until)"
        tail = f" LIMIT {int(limit)}" if limit is not None and limit >= 0 else ""
        rows = self._read(f"{match}{cond} RETURN e {{.seq, .at, .ci_id, .peer_id, .b}} AS e ORDER BY e.at, e.seq{tail}",
                          **params)
        return [_event(r["e"]) for r in rows]

    def conflicts(self) -> list[Conflict]:
        rows = self._read("MATCH (c:Conflict) RETURN c {.*} AS c ORDER BY c.at, c.id")
        return [
            Conflict(id=c["id"], at=c["at"], source=c["source"], run_id=c["run_id"], item=c["item"],
                     item_class=c["item_class"], keys=_loads(c["keys"]), ci_ids=_loads(c["ci_ids"]),
                     attrs=_loads(c["attrs"]))
            for c in (r["c"] for r in rows)
        ]

    def runs(self, source: str | None = None, limit: int = 100) -> list[RunRecord]:
        cond = "" if source is None else " WHERE x.source = $source"
        tail = f" LIMIT {int(limit)}" if limit >= 0 else ""
        rows = self._read(f"MATCH (x:Run){cond} RETURN x {{.*}} AS x ORDER BY x.ended_at DESC, x.run_id{tail}",
                          source=source)
        return [
            RunRecord(x["run_id"], x["source"], x.get("scope"), bool(x["complete"]), x["started_at"], x["ended_at"],
                      x.get("actor"), _loads(x["stats"]))
            for x in (r["x"] for r in rows)
        ]

    def save_discovery_run(self, run: DiscoveryRunRecord) -> None:
        self._write("MERGE (x:DiscoveryRun {run_id: $run_id}) SET x.method = $method, x.started_at = $started_at,"
                    " x.data = $data", run_id=run.run_id, method=run.method, started_at=run.started_at,
                    data=json.dumps(asdict(run), sort_keys=True))

    def discovery_runs(self, method: str | None = None, limit: int = 100) -> list[DiscoveryRunRecord]:
        cond = "" if method is None else " WHERE x.method = $method"
        rows = self._read(f"MATCH (x:DiscoveryRun){cond} RETURN x.data AS data"
                          f" ORDER BY x.started_at DESC, x.run_id LIMIT {int(limit)}", method=method)
        return [DiscoveryRunRecord(**json.loads(r["data"])) for r in rows]

    def get_discovery_run(self, run_id: str) -> DiscoveryRunRecord | None:
        rows = self._read("MATCH (x:DiscoveryRun {run_id: $run_id}) RETURN x.data AS data", run_id=run_id)
        return DiscoveryRunRecord(**json.loads(rows[0]["data"])) if rows else None

    def stats(self) -> dict[str, Any]:
        by_class = {r["k"]: r["n"] for r in self._read("MATCH (c:CI) RETURN c.class AS k, count(*) AS n")}
        by_status = {r["k"]: r["n"] for r in self._read("MATCH (c:CI) RETURN c.status AS k, count(*) AS n")}
        branches = [f"MATCH ()-[r:{t}]->() RETURN '{t}' AS k, count(r) AS n" for t in self._rel_types]
        branches.append(f"MATCH ()-[r:{OTHER_REL}]->() RETURN r.type AS k, count(r) AS n")
        rel_types = {
            r["k"]: r["n"]
            for r in self._read(f"CALL () {{ {' UNION ALL '.join(branches)} }} RETURN k, n")
            if r["n"]
        }
        counts = self._read(
            "RETURN COUNT { MATCH (e:Event) } AS event, COUNT { MATCH (c:Conflict) } AS conflict,"
            " COUNT { MATCH (x:Run) } AS run"
        )[0]
        return {
            "cis": sum(by_class.values()),
            "relationships": sum(rel_types.values()),
            "cis_by_class": dict(sorted(by_class.items())),
            "cis_by_status": dict(sorted(by_status.items())),
            "relationships_by_type": dict(sorted(rel_types.items())),
            "events": counts["event"],
            "conflicts": counts["conflict"],
            "runs": counts["run"],
        }

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
        for r in self._stream(f"MATCH (c:CI) RETURN {_CI_MAP} AS c, c.name_lc AS name_lc ORDER BY c.id"):
            c = r["c"]
            yield "ci", {"id": c["id"], "class": c["class"], "name": c["name"], "name_lc": r["name_lc"],
                         "status": c["status"], "attrs": c["attrs"], "created_at": c["created_at"],
                         "updated_at": c["updated_at"], "provenance": c["provenance"]}
        for r in self._stream("MATCH (k:CIKey) RETURN k.key AS key, k.ci_id AS ci_id ORDER BY key"):
            yield "ci_key", {"key": r["key"], "ci_id": r["ci_id"]}
        for r in self._stream("MATCH (s:Sighting) RETURN s.sid AS sid, s.v AS v ORDER BY sid"):
            kind, item_id, s = _parse_sighting(r["sid"], r["v"])
            yield "sighting", {"kind": kind, "item_id": item_id, "source": s.source, "scope": s.scope,
                               "first_seen": s.first_seen, "last_seen": s.last_seen, "last_run": s.last_run,
                               "missed": s.missed, "status": s.status}
        for r in self._stream(f"MATCH (a:CI)-[r]->(b:CI) RETURN {_REL_MAP} AS r, a.id AS src, b.id AS dst"
                              " ORDER BY r.created_at, r.id"):
            x = r["r"]
            yield "rel", {"id": x["id"], "type": x["type"], "src": r["src"], "dst": r["dst"], "attrs": x["attrs"],
                          "status": x["status"], "created_at": x["created_at"], "updated_at": x["updated_at"]}
        for r in self._stream("MATCH (e:Event) RETURN e {.seq, .at, .ci_id, .peer_id, .b} AS e ORDER BY e.seq"):
            e = _event(r["e"])
            yield "event", {"seq": e.seq, "at": e.at, "kind": e.kind, "source": e.source, "run_id": e.run_id,
                            "ci_id": e.ci_id, "rel_id": e.rel_id, "peer_id": e.peer_id, "attr": e.attr,
                            "old": _dumps(e.old) if e.old is not None else None,
                            "new": _dumps(e.new) if e.new is not None else None, "actor": e.actor}
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

    def is_empty(self) -> bool:
        row = self._read(
            "RETURN NOT (EXISTS { MATCH (c:CI) } OR EXISTS { MATCH (e:Event) } OR EXISTS { MATCH (x:Run) }"
            " OR EXISTS { MATCH (d:DiscoveryRun) }"
            " OR EXISTS { MATCH (k:CIKey) } OR EXISTS { MATCH (s:Sighting) }) AS empty"
        )
        return bool(row[0]["empty"])

    def restore(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Load a dump into an empty store, in transactions of ``BATCH_ROWS`` rows.

        One transaction for a whole estate would not fit a server's transaction memory, so a failed
        restore is undone by clearing the store; a crash mid-way leaves the store flagged, and
        ``write_batch`` refuses to write into it until it is cleared.
        """
        if not self.is_empty():
            raise StoreError(f"{self.url} is not empty; restore needs an empty store (clear it first)")
        self._write("MERGE (m:CmdbMeta {name: 'store'}) SET m.restoring = true, m.seq = 0")
        try:
            _Restorer(self).load(records)
        except BaseException:
            # If even clearing fails, the restoring flag stays set and writes are refused until cleared.
            with contextlib.suppress(StoreError):
                self.clear()
            raise
        self._write("MATCH (m:CmdbMeta {name: 'store'}) SET m.restoring = false")

    def _restore_write(self, query: str, rows: list[Any]) -> int:
        """One restore batch in one managed transaction; returns the query's count ``n`` if any."""
        def work(tx: neo4j.ManagedTransaction) -> int:
            rec = tx.run(query, rows=rows).single()
            return int(rec["n"]) if rec is not None else len(rows)

        try:
            with self._driver.session(database=self.database) as session:
                n: int = session.execute_write(work)
                return n
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "restoring") from exc

    def clear(self) -> None:
        """Delete every node and relationship of the database (the store owns it), in server-side
        batches; constraints and indexes stay."""
        self._autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS", "clearing")
        self._write("MERGE (m:CmdbMeta {name: 'store'}) SET m.seq = 0, m.restoring = false, m.schema_version = $v",
                    v=SCHEMA_VERSION)

    def close(self) -> None:
        self._driver.close()

    def __repr__(self) -> str:
        return f"Neo4jStore({self.url!r})"


def _conflict_row(c: Conflict) -> dict[str, Any]:
    return {"id": c.id, "at": c.at, "source": c.source, "run_id": c.run_id, "item": c.item,
            "item_class": c.item_class, "keys": _dumps(c.keys), "ci_ids": _dumps(c.ci_ids), "attrs": _dumps(c.attrs)}


def _event_row(seq: int, at: str, ci_id: str | None, peer_id: str | None, body: list[Any]) -> dict[str, Any]:
    """An Event node: what queries filter on as properties, the rest as one JSON list."""
    return {"seq": seq, "at": at, "ci_id": ci_id, "peer_id": peer_id, "b": _dumps(body)}


def _event(e: dict[str, Any]) -> Event:
    kind, source, run_id, rel_id, attr, old, new, actor = json.loads(e["b"])
    return Event(at=e["at"], kind=kind, source=source, run_id=run_id, ci_id=e.get("ci_id"), rel_id=rel_id,
                 peer_id=e.get("peer_id"), attr=attr, old=old, new=new, actor=actor, seq=e["seq"])


class _TxReader:
    """BatchReader over the open write transaction; each method is one query."""

    def __init__(self, tx: neo4j.ManagedTransaction, rel_labels: list[str]) -> None:
        self.tx = tx
        self._rel_labels = rel_labels

    @staticmethod
    def _cis(rows: Iterable[Any]) -> dict[str, CIState]:
        # In id order, as SQLite returns them: the plan's event order follows this order.
        return {ci["id"]: _ci_state(ci, sights) for ci, sights in sorted(rows, key=lambda r: str(r[0]["id"]))}

    def match_keys(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, CIState]]:
        rec = self.tx.run(
            "UNWIND $keys AS k MATCH (x:CIKey {key: k})"
            " WITH collect([x.key, x.ci_id]) AS pairs, collect(DISTINCT x.ci_id) AS ids"
            f" CALL (ids) {{ UNWIND ids AS id MATCH (c:CI {{id: id}})"
            f" RETURN collect([{_CI_MAP}, {_CI_SIGHTS}]) AS cis }}"
            " RETURN pairs, cis",
            keys=list(keys),
        ).single(strict=True)
        return {k: c for k, c in rec["pairs"]}, self._cis(rec["cis"])

    def resolve_keys(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        rows = self.tx.run(
            "UNWIND $keys AS k MATCH (x:CIKey {key: k}) MATCH (c:CI {id: x.ci_id})"
            " RETURN x.key AS key, c.id AS id, c.class AS cls",
            keys=list(keys),
        )
        return {r["key"]: (r["id"], r["cls"]) for r in rows}

    def load_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        return self._cis((r["ci"], r["sights"]) for r in self.tx.run(_LOAD_CIS, ids=list(ids)))

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        # Both ends are bound by index seeks (the hints keep a young planner from scanning), so the
        # relationship is an Expand(Into) from the sparser end; a new end has no relationship at all.
        rows = self.tx.run(
            "UNWIND $rows AS row MATCH (a:CI {id: row[1]}) USING INDEX a:CI(id)"
            " MATCH (b:CI {id: row[2]}) USING INDEX b:CI(id)"
            " MATCH (a)-[r]->(b) WHERE r.type = row[0]"
            f" RETURN {_REL_MAP} AS r, a.id AS src, b.id AS dst, {_REL_SIGHTS} AS sights",
            rows=[list(t) for t in triples],
        )
        rels = [_rel_state(r["r"], r["src"], r["dst"], r["sights"]) for r in rows]
        return {(r.type, r.src, r.dst): r for r in rels}

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]:
        ids = list(ids)
        if not ids:
            return {}
        # Relationship indexes are per type: one seek per type, in one query.
        branches = " UNION ALL ".join(
            f"MATCH (a)-[r:{t}]->(b) USING INDEX r:{t}(id) WHERE r.id IN $ids RETURN a, r, b" for t in self._rel_labels
        )
        rows = self.tx.run(
            f"CALL () {{ {branches} }} RETURN {_REL_MAP} AS r, a.id AS src, b.id AS dst, {_REL_SIGHTS} AS sights",
            ids=ids,
        )
        rels = sorted((_rel_state(r["r"], r["src"], r["dst"], r["sights"]) for r in rows), key=lambda r: r.id)
        return {r.id: r for r in rels}

    def scopes(self, source: str) -> list[str]:
        return [r["scope"] for r in self.tx.run(
            "MATCH (x:SightScope {source: $source}) RETURN x.scope AS scope", source=source)]

    def sightings_in(
        self, source: str, scopes: list[str]
    ) -> tuple[list[tuple[str, Sighting]], list[tuple[str, Sighting]]]:
        out: dict[str, list[tuple[str, Sighting]]] = {"ci": [], "rel": []}
        for r in self.tx.run(
            "MATCH (s:Sighting) WHERE s.ss IN $ss RETURN s.sid AS sid, s.v AS v",
            ss=[_dumps([source, scope]) for scope in scopes],
        ):
            kind, item_id, sighting = _parse_sighting(r["sid"], r["v"])
            out[kind].append((item_id, sighting))
        return out["ci"], out["rel"]


class _Restorer:
    """Streams dump records into the store in batches of ``BATCH_ROWS``, CIs before relationships."""

    def __init__(self, store: Neo4jStore) -> None:
        self.store = store
        self.pending: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self.scopes: dict[str, dict[str, str]] = {}
        self.max_seq = 0

    def load(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for kind, row in records:
            if kind not in TABLES:
                raise BadInputError(f"unknown record kind {kind!r} in the dump; expected one of {', '.join(TABLES)}")
            try:
                self.pending[kind].append(self.row(kind, row))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadInputError(f"a {kind} record of the dump is malformed ({exc!r}): {row!r:.200}") from None
            if len(self.pending[kind]) >= BATCH_ROWS:
                self.flush(kind)
        for kind in TABLES:
            self.flush(kind)
        if self.scopes:
            self.store._restore_write(
                "UNWIND $rows AS row MERGE (x:SightScope {sk: row.sk})"
                " ON CREATE SET x.source = row.source, x.scope = row.scope", list(self.scopes.values()))
        self.store._write("MATCH (m:CmdbMeta {name: 'store'}) SET m.seq = $seq", seq=self.max_seq)

    def row(self, kind: str, row: dict[str, Any]) -> dict[str, Any]:
        """The node (or relationship) properties for one dump row."""
        if kind == "ci":
            name = row.get("name")
            return {"id": row["id"], "class": row["class"], "name": name, "name_lc": (name or "").lower(),
                    "status": row["status"], "attrs": row["attrs"], "aidx": attr_tokens(json.loads(row["attrs"])),
                    "created_at": row["created_at"], "updated_at": row["updated_at"],
                    "provenance": row.get("provenance") or "{}"}
        if kind == "ci_key":
            return {"key": row["key"], "ci_id": row["ci_id"]}
        if kind == "sighting":
            sk = _dumps([row["source"], row["scope"]])
            self.scopes[sk] = {"sk": sk, "source": row["source"], "scope": row["scope"]}
            if any(SEP in str(row[k]) for k in ("kind", "item_id", "source", "scope")):
                raise ValueError("a sighting's kind, item, source or scope contains U+001F")
            return _sight_row(row["kind"], row["item_id"], Sighting(
                row["source"], row["scope"], row["first_seen"], row["last_seen"], row["last_run"],
                int(row["missed"]), row["status"]))
        if kind == "rel":
            return {"src": row["src"], "dst": row["dst"], "label": self.store._rel_label(row["type"]),
                    "props": {"id": row["id"], "type": row["type"], "attrs": row["attrs"], "status": row["status"],
                              "created_at": row["created_at"], "updated_at": row["updated_at"]}}
        if kind == "event":
            seq = int(row["seq"]) if row.get("seq") is not None else self.max_seq + 1
            self.max_seq = max(self.max_seq, seq)
            return _event_row(seq, row["at"], row.get("ci_id"), row.get("peer_id"),
                              [row["kind"], row["source"], row.get("run_id"), row.get("rel_id"), row.get("attr"),
                               _loads(row.get("old")), _loads(row.get("new")), row.get("actor")])
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
        else:
            label = {"ci_key": "CIKey", "sighting": "Sighting", "event": "Event", "conflict": "Conflict",
                     "run": "Run", "discovery_run": "DiscoveryRun"}[kind]
            store._restore_write(f"UNWIND $rows AS row CREATE (n:{label}) SET n = row", rows)
