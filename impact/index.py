"""An in-memory impact index: adjacency lists in the direction impact flows, built once, queried often.

Frontier expansion on a store costs one round trip per hop; for repeated questions (the SPOF scan,
benchmarks, an API answering many incidents) the impact edges are loaded once into dicts. Loading
uses only the GraphStore protocol: ``relationships(type=...)`` paged, and ``search`` for the
Services and Clusters whose attributes (tier, quorum) the engine needs. A streaming edge export in
the protocol would make loading cheaper (see ``from_store``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from cmdb.model import Schema, default_schema
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore, SearchQuery
from impact.rules import ImpactRules, required_members
from impact.source import FanOut, Grouped, GroupInfo, ImpactEdge, NodeInfo, Plain, node_info

PAGE = 50_000


@dataclass
class MemoryIndex:
    """ImpactSource over adjacency lists; ``store`` (optional) names CIs the index does not describe."""

    rules: ImpactRules
    service_classes: frozenset[str]
    # failed CI -> (itself, [(CI hurt, cap, type)], [(group it is a member of, type)]): the engine's
    # fan-out, prebuilt so a hop costs one dict look-up per frontier CI and no allocation per edge.
    fan: dict[str, tuple[str, list[Plain], list[Grouped]]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # group -> member ids
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    store: GraphStore | None = None
    edge_count: int = 0
    _groups: dict[str, GroupInfo] = field(default_factory=dict, repr=False)  # built on first use
    # structures derived from the index and built on first use by their owners (``impact.vector``'s
    # CSR arrays under "vector"), dropped by ``add_edge``; the index never imports their modules.
    derived: dict[str, object] = field(default_factory=dict, repr=False)
    # CI -> [(stakeholder id, role, CI id)] over the schema's stakeholder edges whose stakeholder is not
    # retired, and those stakeholders; None when the index was built without them (``from_edges``, a
    # history replay, the CLI's SPOF scan), and ``impact.stakeholders`` then asks the store. An incident
    # of a core switch has 20,000 affected CIs whose stakeholder edges took a 1.3 s store read per answer.
    stakeholders: dict[str, list[tuple[str, str, str]]] | None = None
    affects: dict[str, list[str]] | None = None  # CI -> incident and change records with an AFFECTS edge to it
    people: dict[str, NodeInfo] = field(default_factory=dict)

    @classmethod
    def empty(cls, schema: Schema | None = None, store: GraphStore | None = None) -> MemoryIndex:
        schema = schema or (store_schema(store) if store is not None else default_schema())
        return cls(ImpactRules.from_schema(schema), frozenset(schema.descendants("Service")), store=store)

    def add_edge(self, rel_type: str, src: str, dst: str) -> None:
        """Record one relationship; types that carry no impact are ignored."""
        rule = self.rules.edges.get(rel_type)
        if rule is None or src == dst:
            return
        self.edge_count += 1
        self.derived.clear()
        if rule.group:
            self._fan(src)[2].append((dst, rel_type))
            self.members.setdefault(dst, []).append(src)
            return
        if rule.to_target:
            self._fan(src)[1].append((dst, rule.cap, rel_type))
        if rule.to_source:
            self._fan(dst)[1].append((src, rule.cap, rel_type))

    def _fan(self, ci: str) -> tuple[str, list[Plain], list[Grouped]]:
        entry = self.fan.get(ci)
        if entry is None:
            entry = self.fan[ci] = (ci, [], [])
        return entry

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str, str]], nodes: Iterable[NodeInfo] = (),
                   schema: Schema | None = None, store: GraphStore | None = None) -> MemoryIndex:
        """From (type, src, dst) triples and whatever node descriptions are at hand."""
        idx = cls.empty(schema, store)
        for t, s, d in edges:
            idx.add_edge(t, s, d)
        for n in nodes:
            idx.nodes[n.id] = n
        return idx

    @classmethod
    def from_store(cls, store: GraphStore, schema: Schema | None = None, page: int = PAGE,
                   stakeholders: bool = False) -> MemoryIndex:
        """Load every impact edge (paged per type) and every Service and Cluster description; with
        ``stakeholders``, every stakeholder edge and person too (``load_stakeholders``).

        Paging by offset re-sorts on each page in SQL stores; a ``GraphStore.edges(types)`` stream
        would make this one pass.
        """
        schema = schema or store_schema(store)
        idx = cls.empty(schema, store)
        for t in idx.rules.impact_types:
            offset = 0
            while True:
                rels = store.relationships(type=t, limit=page, offset=offset)
                for r in rels:
                    idx.add_edge(r.type, r.src, r.dst)
                if len(rels) < page:
                    break
                offset += page
        classes = sorted(set(schema.descendants("Service")) | set(schema.descendants("Cluster")))
        offset = 0
        while True:
            found = store.search(SearchQuery(classes=classes, limit=page, offset=offset))
            for ci in found.items:
                if ci.status != "retired":
                    idx.nodes[ci.id] = node_info(ci)
            offset += page
            if offset >= found.total:
                break
        if stakeholders:
            idx.load_stakeholders(store, page)
        return idx

    def load_stakeholders(self, store: GraphStore, page: int = PAGE) -> None:
        """Every stakeholder edge (paged per type), the people and teams they name, and the ``AFFECTS``
        edges of incident and change records."""
        found: list[tuple[str, str, str]] = []
        for t, (role, side) in sorted(self.rules.stakeholders.items()):
            offset = 0
            while True:
                rels = store.relationships(type=t, limit=page, offset=offset)
                for r in rels:
                    who, what = (r.src, r.dst) if side == "source" else (r.dst, r.src)
                    if who != what:
                        found.append((who, role, what))
                if len(rels) < page:
                    break
                offset += page
        wanted = sorted({who for who, _, _ in found})
        people: dict[str, NodeInfo] = {}
        for i in range(0, len(wanted), page):
            for ci_id, ci in store.get_cis_brief(wanted[i:i + page]).items():
                if ci.status != "retired":
                    people[ci_id] = node_info(ci)
        edges: dict[str, list[tuple[str, str, str]]] = {}
        for pair in found:
            if pair[0] in people:
                edges.setdefault(pair[2], []).append(pair)  # the tuples an answer hands out, built once here
        affects: dict[str, list[str]] = {}
        offset = 0
        while True:  # incidents and changes on record: an answer's related records without a store read
            rels = store.relationships(type="AFFECTS", limit=page, offset=offset)
            for r in rels:
                affects.setdefault(r.dst, []).append(r.src)
            if len(rels) < page:
                break
            offset += page
        self.stakeholders, self.people, self.affects = edges, people, affects

    def stakeholders_of(self, ids: Iterable[str]) -> list[tuple[str, str, str]] | None:
        """(stakeholder id, role, CI id) of every stakeholder edge of ``ids`` to a stakeholder not retired;
        None if not loaded."""
        if self.stakeholders is None:
            return None
        get = self.stakeholders.get
        out: list[tuple[str, str, str]] = []
        for what in ids:
            pairs = get(what)
            if pairs:
                out += pairs
        return out

    # -- ImpactSource ---------------------------------------------------------------------------
    def fan_out(self, ids: Collection[str]) -> list[FanOut]:
        get = self.fan.get
        return [f for u in ids if (f := get(u)) is not None]

    def expand(self, ids: Collection[str]) -> list[ImpactEdge]:
        out: list[ImpactEdge] = []
        for u, plain, grouped in self.fan_out(ids):
            out += [(u, v, t) for v, _c, t in plain]
            out += [(u, g, t) for g, t in grouped]
        return out

    def hurts(self) -> Iterator[tuple[str, str]]:
        """Every (failed, hurt) pair: the impact graph's edges."""
        for u, plain, grouped in self.fan.values():
            for v, _c, _t in plain:
                yield u, v
            for g, _t in grouped:
                yield u, g

    def groups(self, ids: Collection[str]) -> dict[str, GroupInfo]:
        cache = self._groups
        missing = [g for g in ids if g not in cache]
        if missing:
            infos = self.describe(missing)
            for g in missing:
                members = tuple(sorted(set(self.members.get(g, ()))))
                attrs = infos[g].attrs if g in infos else {}
                cache[g] = GroupInfo(g, members, required_members(attrs, len(members)))
        return {g: cache[g] for g in ids}

    def describe(self, ids: Iterable[str]) -> dict[str, NodeInfo]:
        ids = list(ids)
        missing = [i for i in ids if i not in self.nodes]
        if missing and self.store is not None:
            for ci_id, ci in self.store.get_cis_brief(missing).items():
                self.nodes[ci_id] = node_info(ci)
        return {i: self.nodes[i] for i in ids if i in self.nodes}

    def is_service(self, ids: Iterable[str]) -> set[str]:
        nodes, classes = self.nodes, self.service_classes
        return {i for i in ids if i in nodes and nodes[i].cls in classes}
