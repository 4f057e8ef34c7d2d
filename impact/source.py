"""Where the engine reads the graph from: any GraphStore by frontier expansion, or an in-memory index.

The engine asks three narrow questions, so one algorithm runs on SQLite, Neo4j, a prebuilt index
or a graph replayed from history (``--as-of``):

* ``expand(ids)``: the impact edges leaving a frontier, as (failed CI, CI it hurts, type);
* ``groups(ids)``: the members and quorum of redundancy groups;
* ``describe(ids)``: name, class and service tier, for output.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cmdb.model import Schema
from cmdb.schema_store import store_schema
from cmdb.store.base import CIState, GraphStore
from impact.rules import ImpactRules, required_members
from impact.states import State

ImpactEdge = tuple[str, str, str]  # (failed CI, the CI it hurts, relationship type)
Plain = tuple[str, State, str]  # (CI hurt, worst state the edge lets through, relationship type)
Grouped = tuple[str, str]  # (redundancy group the failed CI is a member of, relationship type)
FanOut = tuple[str, Sequence[Plain], Sequence[Grouped]]  # a failed CI, what it hurts directly, its groups


@dataclass(frozen=True)
class GroupInfo:
    """A redundancy group: its members and how many of them must survive."""

    id: str
    members: tuple[str, ...]
    required: int


@dataclass(frozen=True)
class NodeInfo:
    """What output needs to know about a CI."""

    id: str
    name: str
    cls: str
    tier: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


class ImpactSource(Protocol):
    """The questions the engine asks of a graph (see the module docstring)."""

    rules: ImpactRules

    def fan_out(self, ids: Collection[str]) -> list[FanOut]:
        """For each id: the CIs it hurts through plain edges (with the edge's cap) and its groups."""

    def expand(self, ids: Collection[str]) -> list[ImpactEdge]: ...

    def groups(self, ids: Collection[str]) -> dict[str, GroupInfo]: ...

    def describe(self, ids: Iterable[str]) -> dict[str, NodeInfo]: ...

    def is_service(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` that are Services."""


def node_info(ci: CIState) -> NodeInfo:
    tier = ci.attrs.get("tier") if ci.cls == "Service" else None
    return NodeInfo(ci.id, ci.name or ci.id, ci.cls, int(tier) if isinstance(tier, int | float) else None,
                    ci.attrs)


class StoreSource:
    """Frontier expansion on any GraphStore: one ``neighbors`` call per hop, ids batched."""

    def __init__(self, store: GraphStore, schema: Schema | None = None) -> None:
        schema = schema or store_schema(store)
        self.store = store
        self.rules = ImpactRules.from_schema(schema)
        self.service_classes = frozenset(schema.descendants("Service"))
        self._info: dict[str, NodeInfo] = {}

    def fan_out(self, ids: Collection[str]) -> list[FanOut]:
        plain: dict[str, list[Plain]] = {}
        grouped: dict[str, list[Grouped]] = {}
        edges = self.rules.edges
        for u, v, t in self.expand(ids):
            rule = edges[t]
            if rule.group:
                grouped.setdefault(u, []).append((v, t))
            else:
                plain.setdefault(u, []).append((v, rule.cap, t))
        return [(u, plain.get(u, ()), grouped.get(u, ())) for u in set(plain) | set(grouped)]

    def expand(self, ids: Collection[str]) -> list[ImpactEdge]:
        if not ids:
            return []
        wanted = set(ids)
        out: list[ImpactEdge] = []
        for rel in self.store.neighbors(sorted(wanted), self.rules.impact_types, "both"):
            for failed in (rel.src, rel.dst):
                if failed in wanted:
                    hurt = self.rules.crossing(rel.type, rel.src, rel.dst, failed)
                    if hurt is not None and hurt != failed:
                        out.append((failed, hurt, rel.type))
        return out

    def groups(self, ids: Collection[str]) -> dict[str, GroupInfo]:
        if not ids:
            return {}
        members: dict[str, list[str]] = {g: [] for g in ids}
        for rel in self.store.neighbors(sorted(ids), self.rules.group_types, "in"):
            if rel.dst in members:
                members[rel.dst].append(rel.src)
        infos = self.describe(ids)
        return {
            g: GroupInfo(g, tuple(sorted(set(m))), required_members(infos[g].attrs if g in infos else {}, len(set(m))))
            for g, m in members.items()
        }

    def describe(self, ids: Iterable[str]) -> dict[str, NodeInfo]:
        want = [i for i in set(ids) if i not in self._info]
        if want:
            for ci_id, ci in self.store.get_cis(want).items():
                self._info[ci_id] = node_info(ci)
        return {i: self._info[i] for i in ids if i in self._info}

    def is_service(self, ids: Iterable[str]) -> set[str]:
        return {i for i, n in self.describe(ids).items() if n.cls in self.service_classes}
