"""The health capability on Neo4j (``HealthStore``), a part of ``Neo4jStore``.

Every question is one aggregate query on the server: attribute presence is read from a CI's
search tokens (``aidx``: ``attr=s:value`` / ``attr=n:value`` for every scalar, so an attribute with
no token is absent, null or empty), the latest sighting from its ``sg`` entries (``source<US>scope<US>
[first_seen, last_seen, ...]``: the fourth ``"``-separated field of the JSON part is ``last_seen``).
Snapshots are ``(:HealthSnapshot {seq, at, data})`` nodes numbered through a ``CmdbMeta`` node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cmdb.errors import BadInputError
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
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.neo4j.layout import ATTR_NAME, OTHER_REL, SEP

_GAPS = (
    "MATCH (c:CI) WHERE c.class IN $classes AND c.status <> 'retired'"
    " WITH c, $wanted[c.class] AS attrs UNWIND range(0, size(attrs) - 1) AS i"
    " WITH c, i, attrs[i] + '=' AS p"
    " WHERE none(t IN coalesce(c.aidx, []) WHERE t STARTS WITH p AND t <> p + 's:')"
    " WITH c, i ORDER BY c.id"
    " WITH c.class AS cls, i, count(c) AS n, collect([c.id, c.name])[..$sample] AS sample"
    " RETURN cls, i, n, sample"
)
_DUP_NAMES = (
    "MATCH (c:CI) WHERE c.class IN $classes AND c.status <> 'retired' AND c.name_lc <> ''"
    " WITH c.class AS cls, c.name_lc AS v, count(*) AS n WHERE n > 1"
    " CALL (cls, v) { MATCH (c:CI) WHERE c.name_lc = v AND c.class = cls AND c.status <> 'retired'"
    "   WITH c ORDER BY c.id RETURN collect([c.id, c.class, c.name]) AS members }"
    " RETURN v, members ORDER BY v, cls"
)
_DUP_ATTR = (  # the value is the attribute's (first) string token, lower-cased
    "MATCH (c:CI) WHERE c.class IN $classes AND c.status <> 'retired'"
    " WITH toLower(substring([t IN coalesce(c.aidx, []) WHERE t STARTS WITH $p][0], size($p))) AS v, c.id AS id"
    " WHERE v IS NOT NULL AND v <> '' WITH v, collect(id) AS ids WHERE size(ids) > 1"
    " UNWIND ids AS id MATCH (c:CI {id: id}) WITH v, c ORDER BY c.id"
    " RETURN v, collect([c.id, c.class, c.name]) AS members ORDER BY v"
)
_FRESHNESS = (
    "MATCH (c:CI) WHERE c.status <> 'retired'"
    " WITH c, reduce(m = '', e IN coalesce(c.sg, []) |"
    "   CASE WHEN split(split(e, $sep)[2], '\"')[3] > m THEN split(split(e, $sep)[2], '\"')[3] ELSE m END) AS last"
    " WHERE c.status = 'stale' OR last < $before"
    " RETURN c.id AS id, c.class AS cls, c.name AS name, c.status AS status, last ORDER BY id"
)


class Neo4jHealth(Neo4jConnection):
    """The store's health part (no schema of its own: it reads the graph's indexes)."""

    def class_status_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self._read("MATCH (c:CI) RETURN c.class AS cls, c.status AS status, count(*) AS n"
                            " ORDER BY cls, status"):
            out.setdefault(r["cls"], {})[r["status"]] = int(r["n"])
        return out

    def attribute_gaps(self, wanted: Mapping[str, Sequence[str]], sample: int = SAMPLE_IDS) -> list[AttrGap]:
        asked = {cls: list(attrs) for cls, attrs in wanted.items() if attrs}
        for attrs in asked.values():
            for a in attrs:
                if not ATTR_NAME.fullmatch(a):
                    raise BadInputError(f"cannot check attribute {a!r}: attribute names are letters, digits and _")
        found = {(cls, i): AttrGap(cls, a, 0) for cls, attrs in asked.items() for i, a in enumerate(attrs)}
        if asked:
            for r in self._read(_GAPS, classes=list(asked), wanted=asked, sample=int(sample)):
                gap = found[(r["cls"], int(r["i"]))]
                gap.missing = int(r["n"])
                gap.sample = [CIBrief(i, gap.cls, n) for i, n in r["sample"]]
        return list(found.values())

    def duplicate_groups(self, classes: Sequence[str], attr: str | None = None) -> list[DuplicateGroup]:
        if attr is None:
            # Names within one class: count first, then fetch only the duplicates through the name index
            # (at 20k CIs half the time of collecting every CI into its group).
            rows = self._read(_DUP_NAMES, classes=list(classes))
        else:
            if not ATTR_NAME.fullmatch(attr):
                raise BadInputError(f"cannot check attribute {attr!r}: attribute names are letters, digits and _")
            rows = self._read(_DUP_ATTR, classes=list(classes), p=f"{attr}=s:")
        return [DuplicateGroup(r["v"], [CIBrief(*m) for m in r["members"]]) for r in rows]

    def cis_lacking(self, classes: Sequence[str], rules: Sequence[EdgeRule]) -> list[CIBrief]:
        where = ["c.class IN $classes AND c.status <> 'retired'"]
        params: dict[str, Any] = {"classes": list(classes)}
        for n, rule in enumerate(rules):
            pattern, extra = "", ""
            if rule.types is not None:
                labels = sorted({self._rel_label(t) for t in rule.types})
                pattern = ":" + "|".join(labels)
                if OTHER_REL in labels:
                    extra = f" AND coalesce(r.type, type(r)) IN $t{n}"
                    params[f"t{n}"] = list(rule.types)
            arrow = {"out": "-[r{p}]->", "in": "<-[r{p}]-", "both": "-[r{p}]-"}[rule.direction].format(p=pattern)
            where.append(f"NOT EXISTS {{ MATCH (c){arrow}(:CI) WHERE r.status <> 'retired'{extra} }}")
        rows = self._read(f"MATCH (c:CI) WHERE {' AND '.join(where)}"
                          " RETURN c.id AS id, c.class AS cls, c.name AS name ORDER BY id", **params)
        return [CIBrief(r["id"], r["cls"], r["name"]) for r in rows]

    def source_runs(self) -> list[SourceRuns]:
        rows = self._read(
            "MATCH (x:Run) RETURN x.source AS source, x.scope AS scope, count(*) AS runs, max(x.ended_at) AS last_run,"
            " max(CASE WHEN x.complete THEN x.ended_at END) AS last_complete")
        found = [SourceRuns(r["source"], r["scope"], int(r["runs"]), r["last_run"], r["last_complete"]) for r in rows]
        return sorted(found, key=lambda s: (s.source, s.scope or ""))

    def ci_freshness(self, seen_before: str) -> list[FreshnessRow]:
        rows = self._read(_FRESHNESS, sep=SEP, before=seen_before)
        return [FreshnessRow(r["id"], r["cls"], r["name"], r["status"], r["last"] or None) for r in rows]

    def save_health_snapshot(self, snapshot: HealthSnapshot) -> None:
        self._write(
            "MERGE (m:CmdbMeta {name: 'health'}) SET m.snapshots = coalesce(m.snapshots, 0) + 1"
            " CREATE (:HealthSnapshot {seq: m.snapshots, at: $at, data: $data})",
            at=snapshot.at, data=json.dumps(snapshot.as_dict(), sort_keys=True))

    def health_snapshots(self, limit: int = 50) -> list[HealthSnapshot]:
        rows = self._read("MATCH (s:HealthSnapshot) WITH s ORDER BY s.seq DESC LIMIT $limit"
                          " RETURN s.seq AS seq, s.data AS data ORDER BY seq", limit=int(limit))
        return [HealthSnapshot(**json.loads(r["data"]), seq=int(r["seq"])) for r in rows]
