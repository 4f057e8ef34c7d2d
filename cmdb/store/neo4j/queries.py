"""Reading the Neo4j store: CIs, search, relationships, neighbours and traversal, history, runs, stats."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from cmdb.errors import BadInputError
from cmdb.store.base import (
    CIState,
    Direction,
    DiscoveryRunRecord,
    Event,
    Page,
    RelState,
    RunRecord,
    SearchQuery,
)
from cmdb.store.neo4j.codecs import ci_state, load_json, pack_events, rel_state, search_token
from cmdb.store.neo4j.conflicts import OPEN
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.neo4j.layout import ATTR_NAME, CI_MAP, LOAD_CIS, OTHER_REL, REL_MAP


class Neo4jQueries(Neo4jConnection):
    """The read side of the GraphStore protocol."""

    if TYPE_CHECKING:  # aliases of merged CIs (``merges.Neo4jMerges``)
        def resolve_alias(self, ci_id: str) -> str | None: ...
        def alias_ids(self, ci_ids: list[str]) -> list[str]: ...
        def alias_names(self, name: str) -> list[str]: ...

    # -- reading --------------------------------------------------------------------------------
    def get_ci(self, ci_id: str) -> CIState | None:
        found = self.get_cis([ci_id]).get(ci_id)
        if found is None and (kept := self.resolve_alias(ci_id)) is not None:  # merged away (cmdb.merge)
            return self.get_cis([kept]).get(kept)
        return found

    def get_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        ids = list(ids)
        if not ids:
            return {}
        return {r["ci"]["id"]: ci_state(r["ci"]) for r in self._read(LOAD_CIS, ids=ids)}

    def find_by_name(self, name: str) -> list[str]:
        rows = self._read("MATCH (c:CI {name_lc: $n}) RETURN c.id AS id ORDER BY id", n=name.lower())
        return sorted({*(r["id"] for r in rows), *self.alias_names(name)})

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
            if not ATTR_NAME.fullmatch(attr):
                raise BadInputError(f"cannot filter on {attr!r}: attribute names are letters, digits and _")
            if isinstance(value, list | dict):
                raise BadInputError(f"cannot filter {attr} on a list or mapping; give one value")
            tok = search_token(attr, value)
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
            # Candidates through the identity-key index (keys are normalised, and retired only when no
            # value of their CI yields them); the token filter above keeps only exact matches.
            match = "MATCH (k:CIKey) WHERE k.key IN $seeds WITH DISTINCT k.ci_id AS cid MATCH (c:CI {id: cid})"
            params["seeds"] = seeds
        total = int(self._read(f"{match} WHERE {clause} RETURN count(c) AS n", **params)[0]["n"])
        page = f" SKIP {max(int(query.offset), 0)}" + (f" LIMIT {int(query.limit)}" if query.limit >= 0 else "")
        if query.after is not None:  # keyset paging: strictly after (class, name_lc, id)
            clause += (" AND (c.class > $a0 OR (c.class = $a0 AND (coalesce(c.name_lc, '') > $a1"
                       " OR (coalesce(c.name_lc, '') = $a1 AND c.id > $a2))))")
            params.update(a0=query.after[0], a1=query.after[1], a2=query.after[2])
        rows = self._read(
            f"{match} WHERE {clause} WITH c ORDER BY c.class, c.name_lc, c.id{page}"
            f" RETURN {CI_MAP} AS ci",
            **params,
        )
        return Page([ci_state(r["ci"]) for r in rows], total, query.limit, query.offset)

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
            f"{match} RETURN {REL_MAP} AS r, a.id AS src, b.id AS dst ORDER BY r.type, src, dst{page}",
            ci=ci_id, types=[type],
        )
        return [rel_state(r["r"], r["src"], r["dst"]) for r in rows]

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
            f" RETURN DISTINCT {REL_MAP} AS r, a.id AS src, b.id AS dst ORDER BY r.type, src, dst",
            ids=ids, types=type_list,
        )
        return [rel_state(r["r"], r["src"], r["dst"]) for r in rows]

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
            wanted = set(self.alias_ids(list(ci_ids)))  # a merged CI's history is the kept one's
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
            for e in pack_events(r["b"]):
                if wanted is not None and e.ci_id not in wanted and e.peer_id not in wanted:
                    continue
                if (since is not None and e.at < since) or (until is not None and e.at > until):
                    continue
                out[e.seq or 0] = e
        events = sorted(out.values(), key=lambda e: (e.at, e.seq or 0))
        return events[: int(limit)] if limit is not None and limit >= 0 else events

    def runs(self, source: str | None = None, limit: int = 100) -> list[RunRecord]:
        cond = "" if source is None else " WHERE x.source = $source"
        tail = f" LIMIT {int(limit)}" if limit >= 0 else ""
        rows = self._read(f"MATCH (x:Run){cond} RETURN x {{.*}} AS x ORDER BY x.ended_at DESC, x.run_id{tail}",
                          source=source)
        return [
            RunRecord(x["run_id"], x["source"], x.get("scope"), bool(x["complete"]), x["started_at"], x["ended_at"],
                      x.get("actor"), load_json(x["stats"]))
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
            f" COUNT {{ MATCH (c:Conflict) WHERE {OPEN} }} AS conflict,"
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

