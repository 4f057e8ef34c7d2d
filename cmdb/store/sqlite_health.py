"""The health capability on SQLite (``HealthStore``), a mixin of ``SqliteStore``.

Each question is one statement (attribute gaps: one per class) over the ``ci``, ``rel``,
``sighting`` and ``run`` tables and their indexes. The snapshot table is created by the first
snapshot written, so opening a store stays read-only.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cmdb.errors import BadInputError, StoreError
from cmdb.store.health import (
    SAMPLE_IDS,
    AttrGap,
    CIBrief,
    DuplicateGroup,
    EdgeRule,
    FreshnessRow,
    HealthSnapshot,
    SourceRuns,
)
from cmdb.store.sqlite_access import begin_write, write_lock

SNAPSHOT_DDL = ("CREATE TABLE IF NOT EXISTS health_snapshot("
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, data TEXT NOT NULL)")
_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIVE = "status != 'retired'"


def _attr_path(attr: str) -> str:
    if not _ATTR.fullmatch(attr):
        raise BadInputError(f"cannot check attribute {attr!r}: attribute names are letters, digits and _")
    return f"$.{attr}"


def _missing(n: int) -> str:
    """SQL true when the attribute at parameter ``n`` is absent, null or empty."""
    return f"coalesce(json_extract(attrs, ?{n}), '') IN ('', '[]', '{{}}')"


class SqliteHealth:
    """Mixin: needs the store's ``_db`` (write connection), ``_lock``, ``_rows`` and ``path``."""

    _db: sqlite3.Connection
    _lock: Any
    path: str

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def class_status_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self._rows("SELECT class, status, count(*) AS n FROM ci GROUP BY class, status"
                            " ORDER BY class, status"):
            out.setdefault(r["class"], {})[r["status"]] = int(r["n"])
        return out

    def attribute_gaps(self, wanted: Mapping[str, Sequence[str]], sample: int = SAMPLE_IDS) -> list[AttrGap]:
        gaps: list[AttrGap] = []
        for cls, attrs in wanted.items():
            attrs = list(attrs)
            if not attrs:
                continue
            # The flags are computed once per CI (a materialised CTE), then counted and sampled per attribute.
            n = len(attrs)
            flags = ", ".join(f"{_missing(i + 1)} AS m{i}" for i in range(n))
            parts = ", ".join(
                f"(SELECT count(*) FROM f WHERE m{i}) AS n{i}, (SELECT json_group_array(json_array(id, name)) FROM"
                f" (SELECT id, name FROM f WHERE m{i} ORDER BY id LIMIT ?{n + 2})) AS s{i}" for i in range(n))
            row = self._rows(
                f"WITH f AS MATERIALIZED (SELECT id, name, {flags} FROM ci WHERE class = ?{n + 1} AND {_LIVE})"
                f" SELECT {parts}", [*(_attr_path(a) for a in attrs), cls, int(sample)])[0]
            gaps.extend(AttrGap(cls, a, int(row[f"n{i}"]), [CIBrief(ci, cls, name) for ci, name in
                                                              json.loads(row[f"s{i}"])])
                        for i, a in enumerate(attrs))
        return gaps

    def duplicate_groups(self, classes: Sequence[str], attr: str | None = None) -> list[DuplicateGroup]:
        if attr is None:  # names: within one class
            value, key, params = "name_lc", "class, v", [json.dumps(list(classes))]
        else:  # one extraction per CI; only text values (a number is no hostname)
            value = "CASE WHEN typeof(json_extract(attrs, ?2)) = 'text' THEN lower(json_extract(attrs, ?2)) END"
            key, params = "v", [json.dumps(list(classes)), _attr_path(attr)]
        rows = self._rows(
            f"SELECT v, json_group_array(json_array(id, class, name)) AS members FROM"
            f" (SELECT {value} AS v, id, class, name FROM ci WHERE class IN (SELECT value FROM json_each(?1))"
            f"  AND {_LIVE} ORDER BY id)"
            f" WHERE v IS NOT NULL AND v != '' GROUP BY {key} HAVING count(*) > 1 ORDER BY v, {key}", params)
        return [DuplicateGroup(r["v"], [CIBrief(*m) for m in json.loads(r["members"])]) for r in rows]

    def cis_lacking(self, classes: Sequence[str], rules: Sequence[EdgeRule]) -> list[CIBrief]:
        where = [f"class IN (SELECT value FROM json_each(?)) AND {_LIVE}"]
        params: list[Any] = [json.dumps(list(classes))]
        for rule in rules:
            typed = ""
            sides = ("src", "dst") if rule.direction == "both" else ("src",) if rule.direction == "out" else ("dst",)
            for side in sides:
                if rule.types is not None:
                    typed = " AND type IN (SELECT value FROM json_each(?))"
                where.append(f"NOT EXISTS (SELECT 1 FROM rel WHERE {side} = ci.id AND status != 'retired'{typed})")
                if rule.types is not None:
                    params.append(json.dumps(list(rule.types)))
        rows = self._rows(f"SELECT id, class, name FROM ci WHERE {' AND '.join(where)} ORDER BY id", params)
        return [CIBrief(r["id"], r["class"], r["name"]) for r in rows]

    def source_runs(self) -> list[SourceRuns]:
        rows = self._rows(
            "SELECT source, scope, count(*) AS runs, max(ended_at) AS last_run,"
            " max(CASE WHEN complete THEN ended_at END) AS last_complete FROM run GROUP BY source, scope")
        found = [SourceRuns(r["source"], r["scope"], int(r["runs"]), r["last_run"], r["last_complete"]) for r in rows]
        return sorted(found, key=lambda s: (s.source, s.scope or ""))

    def ci_freshness(self, seen_before: str) -> list[FreshnessRow]:
        rows = self._rows(
            "SELECT c.id, c.class, c.name, c.status, max(s.last_seen) AS last_seen FROM ci c"
            " LEFT JOIN sighting s ON s.kind = 'ci' AND s.item_id = c.id"
            " WHERE c.status != 'retired' GROUP BY c.id"
            " HAVING c.status = 'stale' OR coalesce(max(s.last_seen), '') < ? ORDER BY c.id", [seen_before])
        return [FreshnessRow(r["id"], r["class"], r["name"], r["status"], r["last_seen"]) for r in rows]

    def save_health_snapshot(self, snapshot: HealthSnapshot) -> None:
        with write_lock(self._lock, self.path, "saving a health snapshot"):
            begin_write(self._db, self.path, "saving a health snapshot")
            try:
                self._db.execute(SNAPSHOT_DDL)
                self._db.execute("INSERT INTO health_snapshot(at, data) VALUES(?, ?)",
                                 (snapshot.at, json.dumps(snapshot.as_dict(), sort_keys=True)))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"saving a health snapshot in {self.path} failed: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def health_snapshots(self, limit: int = 50) -> list[HealthSnapshot]:
        try:
            rows = self._rows("SELECT seq, data FROM (SELECT seq, data FROM health_snapshot ORDER BY seq DESC LIMIT ?)"
                              " ORDER BY seq", [int(limit)])
        except StoreError as exc:
            if "no such table" in str(exc):
                return []
            raise
        return [HealthSnapshot(**json.loads(r["data"]), seq=int(r["seq"])) for r in rows]
