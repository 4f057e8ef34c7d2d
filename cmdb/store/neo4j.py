"""The Neo4j store: the same contract as the SQLite store, for estates that outgrow one box.

Data model (every name below is fixed text or comes from a whitelist; input never reaches Cypher
except as parameters):

* ``(:CI:<Class>)`` per CI. The class label is added only for classes of the store's schema whose
  names are CamelCase; ``class`` is also a property and is what queries use. ``attrs`` and
  ``provenance`` are JSON strings so any value round-trips exactly (provenance in a compact form,
  ``_prov_blob``; dumps carry the SQLite form); ``aidx`` is a list of ``attr=value`` tokens so
  attribute-equality search runs on the server without JSON parsing. ``updated_at`` is stored only
  once it differs from ``created_at``.
* ``(:CIKey {key, ci_id})`` per identity key, unique by constraint.
* ``(a)-[:TYPE {id, attrs, ...}]->(b)`` per relationship; the Neo4j type comes from the schema's
  relationship whitelist. ``CMDB_OTHER`` holds types outside it, with the type in ``r.type``; other
  relationships store neither ``type`` nor empty ``attrs`` nor an ``updated_at`` equal to
  ``created_at`` (reads fill them in: fewer properties per relationship, the bulk of a load). The
  id is unique by a constraint per type.
* Sightings live on their item: ``sg`` on a CI node or relationship is a list of
  ``source<US>scope<US>[first_seen, last_seen, last_run, missed, status]`` strings (U+001F, which no
  source or scope may contain), so reading an item needs no second look-up and writing one costs no
  node. Lifecycle asks "what did this source see in these scopes": ``(:SightScope {sk, source,
  scope})`` registers the scopes a source has sightings in, and ``(:SightMembers {sk, kind, label,
  ids})`` holds, one node per batch and (source, scope), the items that gained a sighting there
  (append-only, as sightings are never removed; ``label`` is the relationship type to seek by).
* History is packed: ``(:EventPack {n, at0, at1, k, b})`` holds up to ``EVENTS_PER_PACK``
  consecutive events (``n`` is the first seq, ``k`` the count, ``b`` the rows as JSON, see
  ``_pack_text``). The ``ev`` list of a CI names the packs holding its events, that of a
  relationship the packs holding the relationship's (a restore files those under both end CIs
  instead; ``(:EventIndex {id, ev})`` stands in for an id without a CI node, which only a dump can
  bring). ``events(ci_ids)`` reads the packs of the CIs and of their relationships and filters
  them exactly; a node per event with three index entries was the largest share of a load's cost.
* ``(:Run)``, ``(:Conflict)``; ``(:CmdbMeta {name: 'store'})`` holds the event counter and the
  layout version (``SCHEMA_VERSION``). Every write transaction first writes that node, so its lock
  serialises writers exactly as SQLite's ``BEGIN IMMEDIATE`` does: a plan's reads stay true until
  its commit.

Each batch is one managed transaction (``execute_write``): the driver retries transient failures
and re-runs the plan, which only reads. Rows are built outside the statements (``_build`` gives a
``WriteProgram``, ``_execute`` writes it), so a stream of batches can be pipelined: planned here in
a read transaction, written by another process (``neo4j_pipeline``, ``write_program``). Driver
exceptions become ``StoreError`` / ``StoreUnavailableError`` here, with the original chained.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import neo4j
from neo4j import exceptions as nx

from cmdb.errors import BadInputError, CmdbError, ConfigError, StoreError, StoreUnavailableError
from cmdb.identity import normalize_key_value
from cmdb.ingest import CLASS_ATTR
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
    rel_id_for,
)
from cmdb.store.neo4j_counter import Neo4jWriteCounter
from cmdb.store.neo4j_idempotency import Neo4jIdempotency
from cmdb.store.neo4j_tokens import Neo4jTokens

if TYPE_CHECKING:
    from cmdb.store.neo4j_pipeline import Neo4jPipeline

SCHEMA_VERSION = 2
"""2: sightings on their items, history in packs (1 had a node per sighting and per event)."""
BATCH_ROWS = 5000
EVENTS_PER_PACK = 64
OTHER_REL = "CMDB_OTHER"
STORE_LABELS = ("CI", "CIKey", "SightScope", "SightMembers", "EventPack", "EventIndex", "Run", "Conflict")
OBSOLETE_SCHEMA = {"cmdb_sighting": "CONSTRAINT", "cmdb_sighting_scope": "INDEX", "cmdb_event_ci": "INDEX",
                   "cmdb_event_peer": "INDEX", "cmdb_event_at": "INDEX"}
TABLES = ("ci", "ci_key", "sighting", "rel", "event", "conflict", "run", "discovery_run")

_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_REL_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# ``updated_at`` is stored only once it differs from ``created_at`` (most CIs of a load never change).
_CI_MAP = ("c {.id, .class, .name, .status, .attrs, .created_at, updated_at: coalesce(c.updated_at, c.created_at),"
           " .provenance, .sg}")
_CI_MAP_TX = _CI_MAP[:-1] + ", eid: elementId(c)}"  # the element id, for writes in the same transaction
SEP = "\x1f"
# A relationship stores ``type`` only under CMDB_OTHER (elsewhere it is the Neo4j type), ``attrs`` only
# when it has any, and ``updated_at`` only once updated: three properties fewer per relationship
# written, the bulk of a load.
_REL_TYPE = "coalesce(r.type, type(r))"
_REL_MAP = (f"r {{.id, type: {_REL_TYPE}, attrs: coalesce(r.attrs, '{{}}'), .status, .created_at,"
            " updated_at: coalesce(r.updated_at, r.created_at)}")
_REL_MAP_SG = _REL_MAP[:-1] + ", .sg}"
_LOAD_CIS = f"UNWIND $ids AS id MATCH (c:CI {{id: id}}) RETURN {_CI_MAP} AS ci"
_LOCK = (
    "MERGE (m:CmdbMeta {name: 'store'}) ON CREATE SET m.seq = 0, m.schema_version = $version"
    " SET m.writes = coalesce(m.writes, 0) + 1 RETURN m.seq AS seq, m.restoring AS restoring, m.writes AS writes"
)
_BUMP = "m.writes = coalesce(m.writes, 0) + 1"  # every write that is not a batch moves the counter too


_T = TypeVar("_T")


class _Stale(Exception):
    """A batch planned ahead no longer matches the store; it is planned again instead."""


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
"""The SQLite store's JSON form, so dumps of both stores carry identical strings."""


_raw_decode = json.JSONDecoder().raw_decode


def _loads(text: str | None) -> Any:
    """JSON this store wrote (no surrounding whitespace): ``raw_decode`` skips ``loads``' two regex
    scans, a third of its cost on the small strings a re-load parses by the hundred thousand."""
    if text is None:
        return None
    try:
        value, end = _raw_decode(text)
        if end == len(text):
            return value
    except json.JSONDecodeError:
        pass
    return json.loads(text)  # anything else: its full parse, and its error


def _attrs(text: str) -> dict[str, Any]:
    value: dict[str, Any] = {} if text == "{}" else _loads(text)  # most relationships have none
    return value


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
        kind = type(value)
        if kind is str:  # the common cases first, without _token's checks
            out.add(f"{attr}=s:{value}")
            continue
        if kind is int:
            out.add(f"{attr}=n:{value}")
            continue
        elems = value if kind is list else list(value.values()) if kind is dict else [value]
        for elem in elems:
            tok = _token(attr, elem)
            if tok is not None:
                out.add(tok)
    return sorted(out)


def _sight_key(source: str, scope: str) -> str:
    """The prefix of one (source, scope)'s entry in an item's ``sg`` list."""
    if SEP in source or SEP in scope:
        raise BadInputError(f"scope {scope!r} of source {source!r} contains U+001F; use printable text")
    return f"{source}{SEP}{scope}{SEP}"


def _sight_entry(s: Sighting) -> str:
    """One entry of an item's ``sg`` list."""
    return _sight_key(s.source, s.scope) + _dumps([s.first_seen, s.last_seen, s.last_run, s.missed, s.status])


@functools.lru_cache(maxsize=4096)
def _sighting_fields(entry: str) -> tuple[str, str, Any, Any, Any, int, Any]:
    """Parsed once per distinct entry: the items one run saw share it, so a re-load parses few."""
    source, scope, v = entry.split(SEP, 2)
    first_seen, last_seen, last_run, missed, status = _loads(v)
    return source, scope, first_seen, last_seen, last_run, int(missed), status


def _parse_sighting(entry: str) -> Sighting:
    return Sighting(*_sighting_fields(entry))  # a new object each time: planners update sightings in place


def _sightings(entries: list[str] | None) -> dict[tuple[str, str], Sighting]:
    out: dict[tuple[str, str], Sighting] = {}
    for entry in sorted(entries or ()):
        s = _parse_sighting(entry)
        out[(s.source, s.scope)] = s
    return out


def _prov_json(prov: dict[str, dict[str, AttrValue]]) -> str:
    """The SQLite store's form, {attr: {source: [value, run_id, set_at]}}: what a dump carries."""
    return _dumps({a: {s: [v.value, v.run_id, v.set_at] for s, v in srcs.items()} for a, srcs in prov.items()})


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    """Equal and of one JSON type (True and 1 are not the same value here)."""
    if a is b:  # the usual case: a new CI's provenance holds the very objects of its attributes
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list | dict):
        return _dumps(a) == _dumps(b)
    return bool(a == b)


def _prov_blob(prov: dict[str, dict[str, AttrValue]], attrs: dict[str, Any], cls: str) -> str:
    """Provenance as stored here: ``[stamps, {attr: {source: stamp | [value, stamp]}}]``.

    A stamp is an index into ``stamps`` (``[run_id, set_at]`` pairs); a value equal to the CI's
    current one (its class for ``@class``) is not repeated. Most CIs have one source and one run,
    so this is about a third of the SQLite form, and provenance was the largest property written.
    """
    stamps: dict[tuple[Any, Any], int] = {}
    out: dict[str, dict[str, Any]] = {}
    for attr, srcs in prov.items():
        current = cls if attr == CLASS_ATTR else attrs.get(attr, _ABSENT)
        entry: dict[str, Any] = {}
        for source, v in srcs.items():
            stamp = stamps.setdefault((v.run_id, v.set_at), len(stamps))
            entry[source] = stamp if _same(v.value, current) else [v.value, stamp]
        out[attr] = entry
    return _dumps([[list(k) for k in stamps], out])


def _provenance(blob: str | None, attrs: dict[str, Any], cls: str) -> dict[str, dict[str, AttrValue]]:
    """Either form: the compact one written here, or the SQLite one (stores restored before it)."""
    data = _loads(blob) or {}
    out: dict[str, dict[str, AttrValue]] = {}
    if isinstance(data, dict):
        for attr, by_source in data.items():
            out[attr] = {src: AttrValue(src, v[0], v[1], v[2]) for src, v in by_source.items()}
        return out
    stamps, entries = data
    for attr, by_source in entries.items():
        current = cls if attr == CLASS_ATTR else attrs.get(attr)
        values: dict[str, AttrValue] = {}
        for source, e in by_source.items():
            if isinstance(e, int):
                value, stamp = (list(current) if isinstance(current, list)
                                else dict(current) if isinstance(current, dict) else current), e
            else:
                value, stamp = e
            run_id, set_at = stamps[stamp]
            values[source] = AttrValue(source, value, run_id, set_at)
        out[attr] = values
    return out


def _ci_state(ci: dict[str, Any]) -> CIState:
    attrs = _attrs(ci["attrs"])
    return CIState(ci["id"], ci["class"], ci["name"], ci["status"], attrs, ci["created_at"],
                   ci["updated_at"], _provenance(ci["provenance"], attrs, ci["class"]), _sightings(ci.get("sg")))


def _rel_state(r: dict[str, Any], src: str, dst: str) -> RelState:
    return RelState(r["id"], r["type"], src, dst, _attrs(r["attrs"]), r["status"], r["created_at"],
                    r["updated_at"], _sightings(r.get("sg")))


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


class Neo4jStore(Neo4jTokens, Neo4jIdempotency, Neo4jWriteCounter):
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
        self._password = password  # for the pipelined writer's own connection (``neo4j_pipeline``)
        self.database = database
        self.url = f"{parts.scheme}://{user}@{host}" + ("" if database == "neo4j" else f"?database={database}")
        schema = schema or default_schema()
        reserved = {*STORE_LABELS, "CmdbMeta"}
        self._class_labels = sorted(c for c in schema.classes if _CLASS_NAME.fullmatch(c) and c not in reserved)
        self._rel_types = sorted(t for t in schema.relationships if _REL_NAME.fullmatch(t) and t != OTHER_REL)
        # attribute -> identity domains where it alone is a key: a search filter on it can start from
        # the CIKey index instead of scanning every CI.
        self._key_domains: dict[str, set[str]] = {}
        for ci_class in schema.classes.values():
            for key in ci_class.identity:
                if len(key) == 1:
                    self._key_domains.setdefault(key[0], set()).add(ci_class.identity_domain)
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
            "cmdb_sight_scope":
                "CREATE CONSTRAINT cmdb_sight_scope IF NOT EXISTS FOR (n:SightScope) REQUIRE n.sk IS UNIQUE",
            "cmdb_run_id": "CREATE CONSTRAINT cmdb_run_id IF NOT EXISTS FOR (n:Run) REQUIRE n.run_id IS UNIQUE",
            "cmdb_conflict_id":
                "CREATE CONSTRAINT cmdb_conflict_id IF NOT EXISTS FOR (n:Conflict) REQUIRE n.id IS UNIQUE",
            "cmdb_meta": "CREATE CONSTRAINT cmdb_meta IF NOT EXISTS FOR (n:CmdbMeta) REQUIRE n.name IS UNIQUE",
            "cmdb_ci_class": "CREATE INDEX cmdb_ci_class IF NOT EXISTS FOR (n:CI) ON (n.class)",
            "cmdb_ci_status": "CREATE INDEX cmdb_ci_status IF NOT EXISTS FOR (n:CI) ON (n.status)",
            "cmdb_ci_name": "CREATE INDEX cmdb_ci_name IF NOT EXISTS FOR (n:CI) ON (n.name_lc)",
            "cmdb_sight_members": "CREATE INDEX cmdb_sight_members IF NOT EXISTS FOR (n:SightMembers) ON (n.sk)",
            "cmdb_sight_scope_source":
                "CREATE INDEX cmdb_sight_scope_source IF NOT EXISTS FOR (n:SightScope) ON (n.source)",
            "cmdb_event_pack":
                "CREATE CONSTRAINT cmdb_event_pack IF NOT EXISTS FOR (n:EventPack) REQUIRE n.n IS UNIQUE",
            "cmdb_event_index":
                "CREATE CONSTRAINT cmdb_event_index IF NOT EXISTS FOR (n:EventIndex) REQUIRE n.id IS UNIQUE",
            "cmdb_discovery_run":
                "CREATE CONSTRAINT cmdb_discovery_run IF NOT EXISTS FOR (n:DiscoveryRun) REQUIRE n.run_id IS UNIQUE",
            "cmdb_run_source": "CREATE INDEX cmdb_run_source IF NOT EXISTS FOR (n:Run) ON (n.source)",
        }
        for rtype in [*self._rel_types, OTHER_REL]:
            name = f"cmdb_rel_{rtype.lower()}"
            wanted[name] = f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR ()-[r:{rtype}]-() REQUIRE r.id IS UNIQUE"
        self._check_layout()
        have = {r["name"] for r in self._read("SHOW INDEXES YIELD name RETURN name")}
        have |= {r["name"] for r in self._read("SHOW CONSTRAINTS YIELD name RETURN name")}
        for name, kind in OBSOLETE_SCHEMA.items():  # left by an emptied store of an older layout
            if name in have:
                self._autocommit(f"DROP {kind} {name} IF EXISTS", "dropping an obsolete index")
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

    def _check_layout(self) -> None:
        """Refuse a store written in another layout; an empty one is simply taken over."""
        rows = self._read("OPTIONAL MATCH (m:CmdbMeta {name: 'store'}) RETURN m.schema_version AS v")
        version = rows[0]["v"] if rows else None
        if version is None or version == SCHEMA_VERSION:
            return
        if self.is_empty():
            self._write("MATCH (m:CmdbMeta {name: 'store'}) SET m.schema_version = $v", v=SCHEMA_VERSION)
            return
        raise StoreError(
            f"{self.url} holds a CMDB in store layout {version}; this version of cmdb reads layout {SCHEMA_VERSION}."
            " Export it with the cmdb version that wrote it (cmdb export FILE), then load that file into an empty"
            " store with this version (cmdb restore FILE)"
        )

    def _key_seeds(self, attrs: dict[str, Any]) -> list[str]:
        """Identity keys that every CI matching the first key attribute of ``attrs`` holds."""
        for attr, value in attrs.items():
            domains = self._key_domains.get(attr)
            if domains and value is not None and not isinstance(value, bool | list | dict) and str(value).strip():
                return sorted(f"{d}:{attr}={normalize_key_value(value)}" for d in domains)
        return []

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
        return self.write_counted(plan)[0]

    def write_counted(self, plan: Callable[[BatchReader], ChangeSet]) -> tuple[ChangeSet, int, int]:
        """``write_batch``, also returning the store's write counter and event counter as it left them."""
        def work(tx: neo4j.ManagedTransaction) -> tuple[ChangeSet, int, int]:
            meta = self._lock(tx)
            reader = _TxReader(tx, [*self._rel_types, OTHER_REL])
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
                   reader_factory: Callable[[neo4j.ManagedTransaction, list[str]], _TxReader]
                   ) -> tuple[ChangeSet, WriteProgram, int, _TxReader]:
        """Plan and build a batch in a read transaction, while another batch may be in flight.

        Returns (changes, program, the write counter when the reads began, the reader used). The
        program's events are numbered from ``seq`` (the event counter the write in flight will leave)
        or, with no write in flight, from the counter read here. ``write_program`` writes it only if
        that all still holds."""
        def work(tx: neo4j.ManagedTransaction) -> tuple[ChangeSet, WriteProgram, int, _TxReader]:
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
                result: tuple[ChangeSet, WriteProgram, int, _TxReader] = session.execute_read(work)
                return result
        except CmdbError:
            raise
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, "planning a batch") from exc

    def pipeline(self) -> Neo4jPipeline[Any]:
        """A pipelined writer for a stream of batches (``cmdb.ingest_pipeline.ingest_many``)."""
        from cmdb.store.neo4j_pipeline import Neo4jPipeline

        return Neo4jPipeline(self)

    def _lock(self, tx: neo4j.ManagedTransaction) -> Any:
        meta = tx.run(_LOCK, version=SCHEMA_VERSION).single(strict=True)
        if meta["restoring"]:
            raise StoreError(f"{self.url} holds an unfinished restore; clear it and restore again")
        return meta

    def _in_write(self, work: Callable[[neo4j.ManagedTransaction], _T], doing: str) -> _T:
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_write(work)
        except CmdbError:
            raise
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, doing) from exc

    def _build(self, cs: ChangeSet, seq: int, reader: _TxReader) -> WriteProgram:
        """The rows of every statement that writes ``cs``, its events numbered from ``seq``.

        Pure row building (the reader is asked only for relationship types it has not seen), so a
        pipelined load builds batch N+1's rows while batch N is written (``neo4j_pipeline``).
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
                text = texts[content] = (_sight_key(s.source, s.scope), _sight_entry(s))
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
        dumps = _dumps
        for start in range(0, len(cs.events), EVENTS_PER_PACK):
            chunk = cs.events[start:start + EVENTS_PER_PACK]
            n = seq + start + 1
            packs.append([n, min(e.at for e in chunk), max(e.at for e in chunk), len(chunk), _pack_text(
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
                 _prov_blob(c.provenance, c.attrs, c.cls), sorted(sg.values()) or None,
                 ev.pop(("ci", c.id), None)]
            )
        prog.cis_new = list(by_label.items())

        changed: dict[str, list[dict[str, Any]]] = {}
        for c in _last_wins(cs.cis_changed, lambda c: c.id):
            changed.setdefault(self._class_label(c.cls), []).append(
                {"id": c.id, "class": c.cls, "name": c.name, "name_lc": (c.name or "").lower(), "status": c.status,
                 "attrs": dumps(c.attrs), "aidx": attr_tokens(c.attrs), "updated_at": c.updated_at,
                 "provenance": _prov_blob(c.provenance, c.attrs, c.cls), "ev": ev.pop(("ci", c.id), [])}
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
                 ev.pop(("rel", r.id), None)]
            )
        prog.rels_new = list(rels_new.items())
        rels_changed: dict[str, list[dict[str, Any]]] = {}
        for r in _last_wins(cs.rels_changed, lambda r: r.id):
            rels_changed.setdefault(self._rel_label(r.type), []).append(
                {"id": r.id, "attrs": dumps(r.attrs), "status": r.status, "updated_at": r.updated_at,
                 "ev": ev.pop(("rel", r.id), [])}
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
        prog.conflicts = [_conflict_row(c) for c in cs.conflicts]
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
        if prog.keys:
            run("UNWIND $rows AS row CREATE (:CIKey {key: row[0], ci_id: row[1]})", rows=prog.keys)

        create = (" CREATE (a)-[r:{rtype} {{id: row[2], type: row[3], attrs: row[4], status: row[5],"
                  " created_at: row[6], updated_at: row[7], sg: row[8], ev: row[9]}}]->(b) RETURN count(r) AS n")
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
                rows=[[_dumps(list(prog.scope_of[k])), kind, label, ids]
                      for (k, kind, label), ids in members.items()])
        if prog.scope_of:
            run("UNWIND $rows AS row MERGE (x:SightScope {sk: row[0]})"
                " ON CREATE SET x.source = row[1], x.scope = row[2]",
                rows=[[_dumps([src, scope]), src, scope] for src, scope in prog.scope_of.values()])

        if prog.packs:
            run("UNWIND $rows AS row CREATE (:EventPack {n: row[0], at0: row[1], at1: row[2], k: row[3],"
                " b: row[4]})", rows=prog.packs)
            if prog.event_refs:
                self._index_events(run, prog.event_refs)
            run("MATCH (m:CmdbMeta {name: 'store'}) SET m.seq = $seq", seq=prog.seq + prog.events)
        if prog.conflicts:
            run("UNWIND $rows AS row MERGE (c:Conflict {id: row.id}) SET c = row", rows=prog.conflicts)
        run("MERGE (x:Run {run_id: $row.run_id}) SET x = $row", row=prog.run)

    @staticmethod
    def _index_events(run: Callable[..., Any], refs: dict[str, list[int]]) -> None:
        """Append pack numbers to CIs' ``ev``; an id without a CI node gets an ``EventIndex``."""
        rows = [[i, sorted(set(ns))] for i, ns in refs.items()]
        found = run("UNWIND $rows AS row MATCH (c:CI {id: row[0]}) SET c.ev = coalesce(c.ev, []) + row[1]"
                    " RETURN count(*) AS n", rows=rows)
        if found["n"] != len(rows):
            run("UNWIND $rows AS row WITH row WHERE NOT EXISTS { MATCH (c:CI {id: row[0]}) }"
                " MERGE (x:EventIndex {id: row[0]}) SET x.ev = coalesce(x.ev, []) + row[1]", rows=rows)

    # -- reading --------------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> CIState | None:
        return self.get_cis([ci_id]).get(ci_id)

    def get_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        ids = list(ids)
        if not ids:
            return {}
        return {r["ci"]["id"]: _ci_state(r["ci"]) for r in self._read(_LOAD_CIS, ids=ids)}

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
        match = "MATCH (c:CI)"
        seeds = self._key_seeds(query.attrs)
        if seeds:
            # Candidates through the identity-key index (a superset: keys are normalised and never
            # retired); the token filter above keeps only exact matches.
            match = "MATCH (k:CIKey) WHERE k.key IN $seeds WITH DISTINCT k.ci_id AS cid MATCH (c:CI {id: cid})"
            params["seeds"] = seeds
        total = int(self._read(f"{match} WHERE {clause} RETURN count(c) AS n", **params)[0]["n"])
        page = f" SKIP {max(int(query.offset), 0)}" + (f" LIMIT {int(query.limit)}" if query.limit >= 0 else "")
        if query.after is not None:
            clause += (" AND (c.class > $a0 OR (c.class = $a0 AND (coalesce(c.name_lc, '') > $a1"
                       " OR (coalesce(c.name_lc, '') = $a1 AND c.id > $a2))))")
            params.update(a0=query.after[0], a1=query.after[1], a2=query.after[2])
        rows = self._read(
            f"{match} WHERE {clause} WITH c ORDER BY c.class, c.name_lc, c.id{page}"
            f" RETURN {_CI_MAP} AS ci",
            **params,
        )
        return Page([_ci_state(r["ci"]) for r in rows], total, query.limit, query.offset)

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
        if ci_ids is None:
            rows = self._read("MATCH (p:EventPack) WHERE ($since IS NULL OR p.at1 >= $since)"
                              " AND ($until IS NULL OR p.at0 <= $until) RETURN p.b AS b", since=since, until=until)
            wanted = None
        else:
            wanted = set(ci_ids)
            if not wanted:
                return []
            # The packs named by each CI, by its relationships and by a stand-in for an id without a CI node.
            rows = self._read(
                "UNWIND $ids AS id CALL (id) {"
                " MATCH (c:CI {id: id}) RETURN c.ev AS ev"
                " UNION ALL MATCH (c:CI {id: id})-[r]-() RETURN r.ev AS ev"
                " UNION ALL MATCH (x:EventIndex {id: id}) RETURN x.ev AS ev }"
                " UNWIND ev AS n WITH DISTINCT n MATCH (p:EventPack {n: n}) RETURN p.b AS b",
                ids=sorted(wanted),
            )
        out: dict[int, Event] = {}
        for r in rows:
            for e in _pack_events(r["b"]):
                if wanted is not None and e.ci_id not in wanted and e.peer_id not in wanted:
                    continue
                if (since is not None and e.at < since) or (until is not None and e.at > until):
                    continue
                out[e.seq or 0] = e
        events = sorted(out.values(), key=lambda e: (e.at, e.seq or 0))
        return events[: int(limit)] if limit is not None and limit >= 0 else events

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
            "RETURN COLLECT { MATCH (p:EventPack) RETURN sum(p.k) }[0] AS event,"
            " COUNT { MATCH (c:Conflict) } AS conflict,"
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
                         "updated_at": c["updated_at"],
                         "provenance": _prov_json(_provenance(c["provenance"], json.loads(c["attrs"]), c["class"]))}
        for r in self._stream("MATCH (k:CIKey) RETURN k.key AS key, k.ci_id AS ci_id ORDER BY key"):
            yield "ci_key", {"key": r["key"], "ci_id": r["ci_id"]}
        for kind, query in (
            ("ci", "MATCH (c:CI) WHERE c.sg IS NOT NULL RETURN c.id AS id, c.sg AS sg ORDER BY id"),
            ("rel", "MATCH (:CI)-[r]->(:CI) WHERE r.sg IS NOT NULL RETURN r.id AS id, r.sg AS sg ORDER BY id"),
        ):
            for r in self._stream(query):
                for s in _sightings(r["sg"]).values():
                    yield "sighting", {"kind": kind, "item_id": r["id"], "source": s.source, "scope": s.scope,
                                       "first_seen": s.first_seen, "last_seen": s.last_seen, "last_run": s.last_run,
                                       "missed": s.missed, "status": s.status}
        for r in self._stream(f"MATCH (a:CI)-[r]->(b:CI) RETURN {_REL_MAP} AS r, a.id AS src, b.id AS dst"
                              " ORDER BY r.created_at, r.id"):
            x = r["r"]
            yield "rel", {"id": x["id"], "type": x["type"], "src": r["src"], "dst": r["dst"], "attrs": x["attrs"],
                          "status": x["status"], "created_at": x["created_at"], "updated_at": x["updated_at"]}
        for r in self._stream("MATCH (p:EventPack) RETURN p.b AS b ORDER BY p.n"):
            for e in sorted(_pack_events(r["b"]), key=lambda e: e.seq or 0):
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
            "RETURN NOT (EXISTS { MATCH (c:CI) } OR EXISTS { MATCH (e:EventPack) } OR EXISTS { MATCH (x:Run) }"
            " OR EXISTS { MATCH (d:DiscoveryRun) } OR EXISTS { MATCH (k:CIKey) } OR EXISTS { MATCH (e:Event) }"
            " OR EXISTS { MATCH (s:Sighting) }) AS empty"
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
        self._write(f"MERGE (m:CmdbMeta {{name: 'store'}}) SET m.restoring = true, m.seq = 0, {_BUMP}")
        try:
            _Restorer(self).load(records)
        except BaseException:
            # If even clearing fails, the restoring flag stays set and writes are refused until cleared.
            with contextlib.suppress(StoreError):
                self.clear()
            raise
        self._write(f"MATCH (m:CmdbMeta {{name: 'store'}}) SET m.restoring = false, {_BUMP}")

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
        # The meta node stays, so its write counter keeps rising: a batch planned ahead of a clear
        # is never written after it (``write_program``).
        self._autocommit("MATCH (n) WHERE NOT n:CmdbMeta CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS",
                         "clearing")
        self._write("MERGE (m:CmdbMeta {name: 'store'})"
                    f" SET m.seq = 0, m.restoring = false, m.schema_version = $v, {_BUMP}", v=SCHEMA_VERSION)

    def close(self) -> None:
        self._driver.close()

    def __repr__(self) -> str:
        return f"Neo4jStore({self.url!r})"


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


def _conflict_row(c: Conflict) -> dict[str, Any]:
    return {"id": c.id, "at": c.at, "source": c.source, "run_id": c.run_id, "item": c.item,
            "item_class": c.item_class, "keys": _dumps(c.keys), "ci_ids": _dumps(c.ci_ids), "attrs": _dumps(c.attrs)}


def _pack_text(rows: list[list[Any]]) -> str:
    """An EventPack's text for rows ``[seq, at, ci_id, peer_id, kind, source, run_id, rel_id, attr, old,
    new, actor]``: ``{"h": [at, source, run_id, actor], "e": [...]}``, where an event sharing the header's
    time, source, run and actor (nearly all: a pack is one batch's) drops those four fields."""
    head = rows[0]
    h = (head[1], head[5], head[6], head[11])
    out = [[r[0], r[2], r[3], r[4], r[7], r[8], r[9], r[10]] if (r[1], r[5], r[6], r[11]) == h else r for r in rows]
    return _dumps({"h": list(h), "e": out})


def _pack_events(b: str) -> list[Event]:
    """The events of one EventPack (either text form: a plain list of full rows was written before)."""
    data = json.loads(b)
    if isinstance(data, dict):
        at0, source0, run0, actor0 = data["h"]
        rows = [[r[0], at0, r[1], r[2], r[3], source0, run0, r[4], r[5], r[6], r[7], actor0] if len(r) == 8 else r
                for r in data["e"]]
    else:
        rows = data
    return [Event(at=at, kind=kind, source=source, run_id=run_id, ci_id=ci_id, rel_id=rel_id, peer_id=peer_id,
                  attr=attr, old=old, new=new, actor=actor, seq=seq)
            for seq, at, ci_id, peer_id, kind, source, run_id, rel_id, attr, old, new, actor in rows]


class _TxReader:
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
            out[ci["id"]] = _ci_state(ci)
            self.eids[ci["id"]] = ci["eid"]
        return out

    def _rels(self, rows: Iterable[Any]) -> list[RelState]:
        rels = sorted((_rel_state(r["r"], r["src"], r["dst"]) for r in rows), key=lambda r: r.id)
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
            f" CALL (ids) {{ UNWIND ids AS id MATCH (c:CI {{id: id}}) RETURN collect({_CI_MAP_TX}) AS cis }}"
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
        rec = self.tx.run(f"UNWIND $ids AS id MATCH (c:CI {{id: id}}) RETURN collect({_CI_MAP_TX}) AS cis",
                          ids=list(ids)).single(strict=True)
        return self._cis(rec["cis"])

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        # Ids are derived from (type, src, dst): one index seek per relationship, as SQLite's primary key.
        by_label: dict[str, list[str]] = {}
        for t in triples:
            by_label.setdefault(self._label(t[0]), []).append(rel_id_for(*t))
        if not by_label:
            return {}
        rels = self._rels(self._by_id(by_label, f"{{r: {_REL_MAP_SG}, src: a.id, dst: b.id}}"))
        return {(r.type, r.src, r.dst): r for r in rels}

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]:
        ids = list(ids)
        if not ids:
            return {}
        # An id alone does not tell the type: look in every type's index.
        rels = self._rels(self._by_id({label: ids for label in self._rel_labels},
                                      f"{{r: {_REL_MAP_SG}, src: a.id, dst: b.id}}"))
        return {r.id: r for r in rels}

    def rel_types_of(self, ids: list[str]) -> dict[str, str]:
        found = {r["id"]: r["type"] for r in self._by_id({label: ids for label in self._rel_labels},
                                                          f"{{id: r.id, type: {_REL_TYPE}}}")}
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
                             " m.ids AS ids", sks=[_dumps([source, scope]) for scope in scopes]):
            (cis if r["kind"] == "ci" else by_label.setdefault(r["label"], set())).update(r["ids"])
        wanted = set(scopes)
        ci_out: list[tuple[str, Sighting]] = []
        if cis:
            for r in self.tx.run("UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN c.id AS id, c.sg AS sg",
                                 ids=sorted(cis)):
                ci_out.extend((r["id"], s) for s in _sightings(r["sg"]).values()
                              if s.source == source and s.scope in wanted)
        rel_out: list[tuple[str, Sighting]] = []
        if by_label:
            rows = self._by_id({label: sorted(ids) for label, ids in by_label.items()},
                               f"{{id: r.id, type: {_REL_TYPE}, sg: r.sg}}")
            for x in rows:
                self.rel_types[x["id"]] = x["type"]
                rel_out.extend((x["id"], s) for s in _sightings(x["sg"]).values()
                               if s.source == source and s.scope in wanted)
        return sorted(ci_out, key=lambda p: (p[0], p[1].scope)), sorted(rel_out, key=lambda p: (p[0], p[1].scope))


class _Restorer:
    """Streams dump records into the store in batches of ``BATCH_ROWS``, CIs before relationships.

    Sightings and history references are attached to their items once every item is in place."""

    def __init__(self, store: Neo4jStore) -> None:
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
        self.store._write(f"MATCH (m:CmdbMeta {{name: 'store'}}) SET m.seq = $seq, {_BUMP}", seq=self.max_seq)

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
                members.setdefault((_dumps([source, scope]), kind, label), []).append(item_id)
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
            prov = _provenance(row.get("provenance") or "{}", attrs, row["class"])
            return {"id": row["id"], "class": row["class"], "name": name, "name_lc": (name or "").lower(),
                    "status": row["status"], "attrs": row["attrs"], "aidx": attr_tokens(attrs),
                    "created_at": row["created_at"], "updated_at": row["updated_at"],
                    "provenance": _prov_blob(prov, attrs, row["class"])}
        if kind == "ci_key":
            return {"key": row["key"], "ci_id": row["ci_id"]}
        if kind == "sighting":
            if row["kind"] not in ("ci", "rel"):
                raise ValueError(f"sighting kind {row['kind']!r} is neither ci nor rel")
            s = Sighting(row["source"], row["scope"], row["first_seen"], row["last_seen"], row["last_run"],
                         int(row["missed"]), row["status"])
            sk = _dumps([row["source"], row["scope"]])
            self.scopes[sk] = {"sk": sk, "source": row["source"], "scope": row["scope"]}
            self.sights.setdefault((row["kind"], str(row["item_id"])), {})[_sight_key(s.source, s.scope)] = \
                _sight_entry(s)
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
                    row.get("run_id"), row.get("rel_id"), row.get("attr"), _loads(row.get("old")),
                    _loads(row.get("new")), row.get("actor")]
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
                packs.append([n, min(e[1] for e in chunk), max(e[1] for e in chunk), len(chunk), _pack_text(chunk)])
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
