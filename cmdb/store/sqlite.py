"""The embedded store: one SQLite file in WAL mode, one transaction per batch.

Bulk look-ups pass their ids or keys as one JSON array parameter (``json_each``), so a batch of any
size is one statement per look-up and never hits SQLite's bound-variable limit.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cmdb.errors import BadInputError, CmdbError, StoreError, StoreNotEmptyError
from cmdb.store.base import (
    AttrValue,
    BatchReader,
    ChangeSet,
    CIState,
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
from cmdb.store.sqlite_access import (
    ReadConnections,
    begin_write,
    busy_error,
    connect,
    ensure_schema,
    write_lock,
    write_timeout,
)
from cmdb.store.sqlite_ageing import (
    AGEING_DDL,
    AGEING_TABLES,
    SqliteAgeingReader,
    apply_ageing,
    apply_retired_keys,
    attach_rel_provenance,
)
from cmdb.store.sqlite_conflicts import CONFLICT_DDL, CONFLICT_TABLES, OPEN, SqliteConflicts
from cmdb.store.sqlite_counter import SqliteWriteCounter
from cmdb.store.sqlite_dry_plans import SqliteDryPlans
from cmdb.store.sqlite_health import SqliteHealth
from cmdb.store.sqlite_idempotency import SqliteIdempotency
from cmdb.store.sqlite_jobs import SqliteJobs
from cmdb.store.sqlite_merge import MERGE_DDL, MERGE_TABLES, SqliteMergeReader, SqliteMerges, apply_merges
from cmdb.store.sqlite_recent import SqliteRecentEvents
from cmdb.store.sqlite_rel_reads import SqliteRelReads
from cmdb.store.sqlite_retention import SqliteRetention
from cmdb.store.sqlite_schema import SCHEMA_EXT_DDL, SCHEMA_EXT_TABLE, SqliteSchemaExtensions
from cmdb.store.sqlite_tasks import TASK_TABLES, TASKS_DDL, SqliteTasksMixin
from cmdb.store.sqlite_tokens import SqliteTokens

SCHEMA_VERSION = 1
_ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ci(
    id TEXT PRIMARY KEY, class TEXT NOT NULL, name TEXT, name_lc TEXT, status TEXT NOT NULL,
    attrs TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, provenance TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ci_class_status ON ci(class, status);
CREATE INDEX IF NOT EXISTS ci_name ON ci(name_lc);
CREATE INDEX IF NOT EXISTS ci_status ON ci(status);
CREATE TABLE IF NOT EXISTS ci_key(key TEXT PRIMARY KEY, ci_id TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ci_key_ci ON ci_key(ci_id);
CREATE TABLE IF NOT EXISTS sighting(
    kind TEXT NOT NULL, item_id TEXT NOT NULL, source TEXT NOT NULL, scope TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, last_run TEXT NOT NULL, missed INTEGER NOT NULL,
    status TEXT NOT NULL, PRIMARY KEY(kind, item_id, source, scope)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sighting_scope ON sighting(source, scope, kind);
CREATE TABLE IF NOT EXISTS rel(
    id TEXT PRIMARY KEY, type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, attrs TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS rel_out ON rel(src, type, dst);
CREATE INDEX IF NOT EXISTS rel_in ON rel(dst, type);
CREATE INDEX IF NOT EXISTS rel_type ON rel(type);
CREATE TABLE IF NOT EXISTS event(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
    run_id TEXT, ci_id TEXT, rel_id TEXT, peer_id TEXT, attr TEXT, old TEXT, new TEXT, actor TEXT);
CREATE INDEX IF NOT EXISTS event_ci ON event(ci_id, at);
CREATE INDEX IF NOT EXISTS event_peer ON event(peer_id, at);
CREATE INDEX IF NOT EXISTS event_at ON event(at);
CREATE TABLE IF NOT EXISTS conflict(
    id TEXT PRIMARY KEY, at TEXT NOT NULL, source TEXT NOT NULL, run_id TEXT NOT NULL, item TEXT NOT NULL,
    item_class TEXT NOT NULL, keys TEXT NOT NULL, ci_ids TEXT NOT NULL, attrs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run(
    run_id TEXT PRIMARY KEY, source TEXT NOT NULL, scope TEXT, complete INTEGER NOT NULL,
    started_at TEXT NOT NULL, ended_at TEXT NOT NULL, actor TEXT, stats TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS run_source ON run(source, ended_at);
CREATE TABLE IF NOT EXISTS discovery_run(
    run_id TEXT PRIMARY KEY, method TEXT NOT NULL, started_at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS discovery_run_started ON discovery_run(started_at);
"""

TABLES = (SCHEMA_EXT_TABLE, "ci", "ci_key", "sighting", "rel", "event", "conflict", "run", "discovery_run",
          *TASK_TABLES, *AGEING_TABLES, *MERGE_TABLES, *CONFLICT_TABLES)


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode


def dump_provenance(prov: dict[str, dict[str, AttrValue]]) -> str:
    """One JSON map per CI: {attr: {source: [value, run_id, set_at]}}."""
    return _dumps({a: {s: [v.value, v.run_id, v.set_at] for s, v in srcs.items()} for a, srcs in prov.items()})


def load_provenance(text: str) -> dict[str, dict[str, AttrValue]]:
    return {a: {s: AttrValue(s, v[0], v[1], v[2]) for s, v in srcs.items()} for a, srcs in _decode(text).items()}


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SqliteStore(SqliteTasksMixin, SqliteTokens, SqliteJobs, SqliteIdempotency, SqliteWriteCounter,
                  SqliteSchemaExtensions, SqliteHealth, SqliteRecentEvents, SqliteMerges, SqliteRelReads,
                  SqliteDryPlans, SqliteRetention, SqliteConflicts):
    """GraphStore on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory for {self.path}: {exc.strerror}") from exc
        try:
            # Opening is read-only unless the file is new (``sqlite_access``): never waits for a loader.
            self._db = connect(self.path, busy_ms=int(write_timeout() * 1000))
            ensure_schema(self._db, DDL + TASKS_DDL + SCHEMA_EXT_DDL + AGEING_DDL + MERGE_DDL + CONFLICT_DDL,
                          SCHEMA_VERSION)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise busy_error(self.path, write_timeout(), "creating the store") from exc
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._readers = None if self.path == ":memory:" else ReadConnections(self.path)

    # -- writing --------------------------------------------------------------------------------
    def write_batch(self, plan: Callable[[Any], ChangeSet]) -> ChangeSet:
        with write_lock(self._lock, self.path, "a batch"):
            begin_write(self._db, self.path, "a batch")
            try:
                cs = plan(_Reader(self._db))
                self._apply(cs)
                self._db.execute("COMMIT")
                return cs
            except CmdbError:
                self._db.execute("ROLLBACK")
                raise
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"writing to {self.path} failed and was rolled back: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _apply(self, cs: ChangeSet) -> None:
        db = self._db
        ci_rows = [
            (c.id, c.cls, c.name, (c.name or "").lower(), c.status, _dumps(c.attrs), c.created_at, c.updated_at,
             dump_provenance(c.provenance))
            for c in cs.cis_new
        ]
        db.executemany("INSERT INTO ci VALUES(?,?,?,?,?,?,?,?,?)", ci_rows)
        db.executemany(
            "UPDATE ci SET class=?, name=?, name_lc=?, status=?, attrs=?, updated_at=?, provenance=? WHERE id=?",
            [(c.cls, c.name, (c.name or "").lower(), c.status, _dumps(c.attrs), c.updated_at,
              dump_provenance(c.provenance), c.id)
             for c in cs.cis_changed],
        )
        apply_retired_keys(db, cs)
        db.executemany("INSERT INTO ci_key(key, ci_id) VALUES(?,?)", cs.keys)
        db.executemany(
            "INSERT OR REPLACE INTO sighting VALUES(?,?,?,?,?,?,?,?,?)",
            [(w.kind, w.item_id, w.sighting.source, w.sighting.scope, w.sighting.first_seen,
              w.sighting.last_seen, w.sighting.last_run, w.sighting.missed, w.sighting.status)
             for w in cs.sightings],
        )
        db.executemany(
            "INSERT INTO rel VALUES(?,?,?,?,?,?,?,?)",
            [(r.id, r.type, r.src, r.dst, _dumps(r.attrs), r.status, r.created_at, r.updated_at)
             for r in cs.rels_new],
        )
        db.executemany(
            "UPDATE rel SET attrs=?, status=?, updated_at=? WHERE id=?",
            [(_dumps(r.attrs), r.status, r.updated_at, r.id) for r in cs.rels_changed],
        )
        db.executemany(
            "INSERT INTO event(at, kind, source, run_id, ci_id, rel_id, peer_id, attr, old, new, actor)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            [(e.at, e.kind, e.source, e.run_id, e.ci_id, e.rel_id, e.peer_id, e.attr,
              _dumps(e.old) if e.old is not None else None, _dumps(e.new) if e.new is not None else None, e.actor)
             for e in cs.events],
        )
        db.executemany(
            "INSERT OR REPLACE INTO conflict VALUES(?,?,?,?,?,?,?,?,?)",
            [(c.id, c.at, c.source, c.run_id, c.item, c.item_class, _dumps(c.keys), _dumps(c.ci_ids),
              _dumps(c.attrs)) for c in cs.conflicts],
        )
        apply_ageing(db, cs)
        r = cs.run
        db.execute(
            "INSERT OR REPLACE INTO run VALUES(?,?,?,?,?,?,?,?)",
            (r.run_id, r.source, r.scope, int(r.complete), r.started_at, r.ended_at, r.actor, _dumps(r.stats)),
        )
        if cs.merges:
            apply_merges(db, cs.merges)

    def _batch_reader(self, db: sqlite3.Connection) -> BatchReader:
        """The reader a plan sees inside a write transaction (the store's capability parts use it too)."""
        return _Reader(db)

    # -- reading --------------------------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection, outside the write lock (``sqlite_access``)."""
        if self._readers is None:
            with self._lock:
                yield self._db
        else:
            yield self._readers.get()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._reading() as db:
            try:
                cur = db.execute(sql, tuple(params))
                cur.row_factory = sqlite3.Row
                return cur.fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"query on {self.path} failed: {exc}") from exc

    def get_ci(self, ci_id: str) -> CIState | None:
        found = self.get_cis([ci_id]).get(ci_id)
        if found is None and (kept := self.resolve_alias(ci_id)) is not None:  # merged away (cmdb.merge)
            return self.get_cis([kept]).get(kept)
        return found

    def get_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        with self._reading() as db:
            return _load_cis(db, list(ids))

    def find_by_name(self, name: str) -> list[str]:
        found = [r["id"] for r in self._rows("SELECT id FROM ci WHERE name_lc=? ORDER BY id", (name.lower(),))]
        return sorted({*found, *self.alias_names(name)})

    def find_by_key(self, key: str) -> str | None:
        rows = self._rows("SELECT ci_id FROM ci_key WHERE key=?", (key,))
        return str(rows[0]["ci_id"]) if rows else None

    def search(self, query: SearchQuery) -> Page:
        where, params = ["1=1"], []
        if query.classes:
            where.append("class IN (SELECT value FROM json_each(?))")
            params.append(_dumps(query.classes))
        if query.status:
            where.append("status=?")
            params.append(query.status)
        if query.text:
            where.append("name_lc LIKE ? ESCAPE '\\'")
            escaped = query.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        for attr, value in query.attrs.items():
            if not _ATTR_NAME.fullmatch(attr):
                raise BadInputError(f"cannot filter on {attr!r}: attribute names are letters, digits and _")
            where.append("EXISTS (SELECT 1 FROM json_each(ci.attrs, ?) j WHERE j.value = ?)")
            params.extend([f"$.{attr}", value])
        clause = " AND ".join(where)
        total = int(self._rows(f"SELECT count(*) AS n FROM ci WHERE {clause}", params)[0]["n"])
        after, after_params = "", []
        if query.after is not None:
            after, after_params = " AND (class, name_lc, id) > (?, ?, ?)", list(query.after)
        ids = [
            r["id"]
            for r in self._rows(
                f"SELECT id FROM ci WHERE {clause}{after} ORDER BY class, name_lc, id LIMIT ? OFFSET ?",
                [*params, *after_params, query.limit, query.offset],
            )
        ]
        states = self.get_cis(ids)
        return Page([states[i] for i in ids], total, query.limit, query.offset)

    def relationships(
        self,
        ci_id: str | None = None,
        type: str | None = None,
        direction: Direction = "both",
        include_retired: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[RelState]:
        where, params = ["1=1"], []
        if ci_id is not None:
            if direction == "out":
                where.append("src=?")
                params.append(ci_id)
            elif direction == "in":
                where.append("dst=?")
                params.append(ci_id)
            else:
                where.append("(src=? OR dst=?)")
                params.extend([ci_id, ci_id])
        if type is not None:
            where.append("type=?")
            params.append(type)
        if not include_retired:
            where.append("status != 'retired'")
        rows = self._rows(
            f"SELECT * FROM rel WHERE {' AND '.join(where)} ORDER BY type, src, dst LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return _rels_from_rows(rows)

    def neighbors(
        self, ids: Iterable[str], types: Iterable[str] | None = None, direction: Direction = "out"
    ) -> list[RelState]:
        id_json = _dumps(list(ids))
        type_filter, params = "", []
        if types is not None:
            type_filter = " AND type IN (SELECT value FROM json_each(?))"
            params = [_dumps(list(types))]
        parts = []
        args: list[Any] = []
        if direction in ("out", "both"):
            parts.append(f"SELECT * FROM rel WHERE src IN (SELECT value FROM json_each(?)) {type_filter}"
                         " AND status != 'retired'")
            args += [id_json, *params]
        if direction in ("in", "both"):
            parts.append(f"SELECT * FROM rel WHERE dst IN (SELECT value FROM json_each(?)) {type_filter}"
                         " AND status != 'retired'")
            args += [id_json, *params]
        return _rels_from_rows(self._rows(" UNION ".join(parts), args))

    def events(
        self,
        ci_ids: Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        where, params = ["1=1"], []
        if ci_ids is not None:
            id_json = _dumps(self.alias_ids(list(ci_ids)))  # a merged CI's history is the kept one's
            where.append("(ci_id IN (SELECT value FROM json_each(?)) OR peer_id IN (SELECT value FROM json_each(?)))")
            params.extend([id_json, id_json])
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at <= ?")
            params.append(until)
        sql = f"SELECT * FROM event WHERE {' AND '.join(where)} ORDER BY at, seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            Event(at=r["at"], kind=r["kind"], source=r["source"], run_id=r["run_id"], ci_id=r["ci_id"],
                  rel_id=r["rel_id"], peer_id=r["peer_id"], attr=r["attr"], old=_loads(r["old"]),
                  new=_loads(r["new"]), actor=r["actor"], seq=r["seq"])
            for r in self._rows(sql, params)
        ]

    def runs(self, source: str | None = None, limit: int = 100) -> list[RunRecord]:
        sql, params = "SELECT * FROM run", list[Any]()
        if source is not None:
            sql += " WHERE source=?"
            params.append(source)
        sql += " ORDER BY ended_at DESC, run_id LIMIT ?"
        params.append(limit)
        return [
            RunRecord(r["run_id"], r["source"], r["scope"], bool(r["complete"]), r["started_at"], r["ended_at"],
                      r["actor"], _loads(r["stats"]))
            for r in self._rows(sql, params)
        ]

    def save_discovery_run(self, run: DiscoveryRunRecord) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO discovery_run(run_id, method, started_at, data) VALUES(?,?,?,?)",
                    (run.run_id, run.method, run.started_at, json.dumps(asdict(run), sort_keys=True)),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"saving discovery run {run.run_id} in {self.path} failed: {exc}") from exc

    def discovery_runs(self, method: str | None = None, limit: int = 100) -> list[DiscoveryRunRecord]:
        sql, params = "SELECT data FROM discovery_run", list[Any]()
        if method is not None:
            sql += " WHERE method=?"
            params.append(method)
        sql += " ORDER BY started_at DESC, run_id LIMIT ?"
        params.append(limit)
        return [DiscoveryRunRecord(**json.loads(r["data"])) for r in self._rows(sql, params)]

    def get_discovery_run(self, run_id: str) -> DiscoveryRunRecord | None:
        rows = self._rows("SELECT data FROM discovery_run WHERE run_id=?", [run_id])
        return DiscoveryRunRecord(**json.loads(rows[0]["data"])) if rows else None

    def stats(self) -> dict[str, Any]:
        by_class = {r["class"]: r["n"] for r in self._rows("SELECT class, count(*) n FROM ci GROUP BY class")}
        by_status = {r["status"]: r["n"] for r in self._rows("SELECT status, count(*) n FROM ci GROUP BY status")}
        rel_types = {r["type"]: r["n"] for r in self._rows("SELECT type, count(*) n FROM rel GROUP BY type")}
        counts = {
            t: int(self._rows(f"SELECT count(*) n FROM {t}")[0]["n"]) for t in ("event", "conflict", "run")
        }
        counts["conflict"] = int(self._rows(f"SELECT count(*) n FROM conflict c WHERE {OPEN.format(c='c')}")[0]["n"])
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

    # -- export / restore -----------------------------------------------------------------------
    def dump(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for table in TABLES:
            order = "seq" if table == "event" else "rowid" if table not in ("ci_key", "sighting") else "1"
            for row in self._rows(f"SELECT * FROM {table} ORDER BY {order}"):
                yield table, dict(row)

    def restore(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        with self._lock:
            if int(self._db.execute("SELECT count(*) FROM ci").fetchone()[0]):
                raise StoreNotEmptyError(f"{self.path} is not empty; restore needs an empty store")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for table, row in records:
                    if table not in TABLES:
                        raise BadInputError(f"unknown record kind {table!r} in the dump")
                    cols = list(row)
                    if not all(_ATTR_NAME.fullmatch(c) for c in cols):
                        raise BadInputError(f"bad column name in a {table} record")
                    self._db.execute(
                        f"INSERT INTO {table}({', '.join(cols)}) VALUES({', '.join('?' * len(cols))})",
                        [row[c] for c in cols],
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def clear(self) -> None:
        """Delete everything (for ``migrate --replace``); one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for table in TABLES:
                    self._db.execute(f"DELETE FROM {table}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            if self._readers is not None:
                self._readers.close()
            self._db.close()


class _Reader(SqliteAgeingReader, SqliteMergeReader):
    """BatchReader over the open write transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def match_keys(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, CIState]]:
        rows = self.db.execute(
            "SELECT k.key, k.ci_id FROM json_each(?) j JOIN ci_key k ON k.key = j.value", (_dumps(list(keys)),)
        ).fetchall()
        key_map = {k: c for k, c in rows}
        return key_map, _load_cis(self.db, sorted(set(key_map.values())))

    def resolve_keys(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        rows = self.db.execute(
            "SELECT k.key, k.ci_id, c.class FROM json_each(?) j JOIN ci_key k ON k.key = j.value"
            " JOIN ci c ON c.id = k.ci_id",
            (_dumps(list(keys)),),
        ).fetchall()
        return {k: (ci_id, cls) for k, ci_id, cls in rows}

    def load_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        return _load_cis(self.db, list(ids))

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        # Ids are derived from (type, src, dst): a primary-key look-up per relationship.
        found = self.load_rels_by_id([rel_id_for(*t) for t in triples])
        return {(r.type, r.src, r.dst): r for r in found.values()}

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]:
        cur = self.db.execute("SELECT * FROM rel WHERE id IN (SELECT value FROM json_each(?))", (_dumps(list(ids)),))
        cur.row_factory = sqlite3.Row
        rels = _rels_from_rows(cur.fetchall())
        _attach_rel_sightings(self.db, rels)
        attach_rel_provenance(self.db, rels)
        return {r.id: r for r in rels}

    def scopes(self, source: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT scope FROM sighting WHERE source=?", (source,))]

    def sightings_in(
        self, source: str, scopes: list[str]
    ) -> tuple[list[tuple[str, Sighting]], list[tuple[str, Sighting]]]:
        out: dict[str, list[tuple[str, Sighting]]] = {"ci": [], "rel": []}
        for row in self.db.execute(
            "SELECT kind, item_id, source, scope, first_seen, last_seen, last_run, missed, status FROM sighting"
            " WHERE source=? AND scope IN (SELECT value FROM json_each(?))",
            (source, _dumps(scopes)),
        ):
            out[row[0]].append((row[1], Sighting(*row[2:])))
        return out["ci"], out["rel"]


def _load_cis(db: sqlite3.Connection, ids: list[str]) -> dict[str, CIState]:
    if not ids:
        return {}
    id_json = _dumps(ids)
    states: dict[str, CIState] = {}
    for row in db.execute(
        "SELECT id, class, name, status, attrs, created_at, updated_at, provenance FROM ci"
        " WHERE id IN (SELECT value FROM json_each(?))",
        (id_json,),
    ):
        states[row[0]] = CIState(row[0], row[1], row[2], row[3], _decode(row[4]), row[5], row[6],
                                 load_provenance(row[7]))
    for row in db.execute(
        "SELECT item_id, source, scope, first_seen, last_seen, last_run, missed, status FROM sighting"
        " WHERE kind='ci' AND item_id IN (SELECT value FROM json_each(?))",
        (id_json,),
    ):
        states[row[0]].sightings[(row[1], row[2])] = Sighting(*row[1:])
    return states


def _rels_from_rows(rows: Iterable[sqlite3.Row]) -> list[RelState]:
    return [
        RelState(r["id"], r["type"], r["src"], r["dst"], json.loads(r["attrs"]), r["status"], r["created_at"],
                 r["updated_at"])
        for r in rows
    ]


def _attach_rel_sightings(db: sqlite3.Connection, rels: list[RelState]) -> None:
    if not rels:
        return
    by_id = {r.id: r for r in rels}
    for row in db.execute(
        "SELECT item_id, source, scope, first_seen, last_seen, last_run, missed, status FROM sighting"
        " WHERE kind='rel' AND item_id IN (SELECT value FROM json_each(?))",
        (_dumps(list(by_id)),),
    ):
        by_id[row[0]].sightings[(row[1], row[2])] = Sighting(*row[1:])
