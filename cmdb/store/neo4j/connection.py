"""The Neo4j store's connection: the driver, errors translated into ours, reads and writes, schema set-up.

Every part of the store (``queries``, ``writer``, ``restore``) is a class built on ``Neo4jConnection``;
driver exceptions become ``StoreError`` / ``StoreUnavailableError`` here, with the original chained.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import neo4j
from neo4j import exceptions as nx

from cmdb.errors import CmdbError, ConfigError, StoreError, StoreUnavailableError
from cmdb.identity import normalize_key_value
from cmdb.model import Schema, default_schema
from cmdb.store.neo4j.layout import CLASS_NAME, OBSOLETE_SCHEMA, OTHER_REL, REL_NAME, SCHEMA_VERSION, STORE_LABELS


def read_password(user: str = "neo4j") -> str:
    """The Neo4j password from ``CMDB_NEO4J_PASSWORD`` or the 0600 file named by ``CMDB_NEO4J_PASSWORD_FILE``.

    The file may hold ``<user>/<password>``, the form of the Neo4j image's ``NEO4J_AUTH_FILE``, so one file
    serves the server and the product (docker-compose.yml); ``user`` is the store URL's user.
    """
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
    if secret.startswith(user + "/") and len(secret) > len(user) + 1:
        return secret[len(user) + 1:]
    return secret


_T = TypeVar("_T")


class Neo4jConnection:
    """One driver connection to a Neo4j 5 server, the store's schema ensured on opening."""

    @classmethod
    def from_url(cls, url: str, *, schema: Schema | None = None) -> Self:
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
        user = parts.username or "neo4j"
        return cls(uri, user, read_password(user), database, schema=schema)

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
        self._password = password  # for the pipelined writer's own connection (``pipeline``)
        self.database = database
        self.url = f"{parts.scheme}://{user}@{host}" + ("" if database == "neo4j" else f"?database={database}")
        schema = schema or default_schema()
        reserved = {*STORE_LABELS, "CmdbMeta"}
        self._class_labels = sorted(c for c in schema.classes if CLASS_NAME.fullmatch(c) and c not in reserved)
        self._rel_types = sorted(t for t in schema.relationships if REL_NAME.fullmatch(t) and t != OTHER_REL)
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
        self._extend_schema()

    def _in_write(self, work: Callable[[neo4j.ManagedTransaction], _T], doing: str) -> _T:
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_write(work)
        except CmdbError:
            raise
        except (nx.Neo4jError, nx.DriverError) as exc:
            raise self._translate(exc, doing) from exc

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

    # -- extension hooks: a capability part (tasks ...) overrides these and calls super() ----------------
    def _extend_schema(self) -> None:
        """Indexes and constraints of the capability parts, created after the graph's own."""

    def _after_batch_write(self, tx: neo4j.ManagedTransaction, prog: Any) -> None:
        """Runs at the end of each batch's write transaction (derived properties of what it wrote)."""

    def _dump_extra(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The capability parts' records after the graph's in a dump."""
        yield from ()

    def _restore_extra(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, dict[str, Any]]]:
        """Takes the capability parts' records out of a restore stream (writing them) and passes the rest on."""
        return records

    def _after_restore(self) -> None:
        """Runs after a restore has loaded every record."""

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

    def is_empty(self) -> bool:
        row = self._read(
            "RETURN NOT (EXISTS { MATCH (c:CI) } OR EXISTS { MATCH (e:EventPack) } OR EXISTS { MATCH (x:Run) }"
            " OR EXISTS { MATCH (d:DiscoveryRun) } OR EXISTS { MATCH (k:CIKey) } OR EXISTS { MATCH (e:Event) }"
            " OR EXISTS { MATCH (s:Sighting) }) AS empty"
        )
        return bool(row[0]["empty"])

    def close(self) -> None:
        self._driver.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
