"""How impact crosses each relationship type, read from the schema (``impact``, ``effect``, ``group``).

Kept apart from the engine so both the store-backed and the in-memory sources agree on which edges
carry impact and in which direction, and so a schema extension changes behaviour without code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cmdb.model import Schema
from impact.states import State

# Quorum when a group does not declare one: consensus clusters need a majority, the other redundancy
# groups (pools, HA pairs, replica sets, redundant links) stay up while any member is up.
MAJORITY_TYPES = frozenset({"cluster"})


@dataclass(frozen=True)
class EdgeRule:
    """One relationship type's impact semantics."""

    type: str
    to_target: bool  # A failing hurts B (A -TYPE-> B)
    to_source: bool  # B failing hurts A
    cap: State  # the worst state that crosses the edge (``effect: degraded`` caps at DEGRADED)
    group: bool  # the target is a redundancy group evaluated by quorum


@dataclass(frozen=True)
class ImpactRules:
    """The impact-carrying relationship types and the stakeholder types of one schema."""

    edges: Mapping[str, EdgeRule]
    stakeholders: Mapping[str, tuple[str, str]]  # type -> (role, side the stakeholder is on)

    @classmethod
    def from_schema(cls, schema: Schema) -> ImpactRules:
        edges: dict[str, EdgeRule] = {}
        roles: dict[str, tuple[str, str]] = {}
        for rt in schema.relationships.values():
            if rt.impact != "none":
                cap = State.DEGRADED if rt.effect == "degraded" else State.DOWN
                edges[rt.name] = EdgeRule(
                    rt.name, rt.impact in ("to_target", "both"), rt.impact in ("to_source", "both"), cap, rt.group
                )
            if rt.stakeholder:
                roles[rt.name] = (rt.stakeholder, "source" if rt.stakeholder_side == "source" else "target")
        return cls(edges, roles)

    @property
    def impact_types(self) -> list[str]:
        return sorted(self.edges)

    @property
    def group_types(self) -> list[str]:
        return sorted(t for t, r in self.edges.items() if r.group)

    def crossing(self, rel_type: str, src: str, dst: str, failed: str) -> str | None:
        """The CI that ``failed`` hurts through this edge, or None if impact does not cross that way."""
        rule = self.edges.get(rel_type)
        if rule is None:
            return None
        if failed == src and rule.to_target:
            return dst
        if failed == dst and rule.to_source:
            return src
        return None


def required_members(attrs: Mapping[str, Any], members: int) -> int:
    """How many members must survive for a group to be up (the stricter of quorum and quorum_percent)."""
    needed: list[int] = []
    quorum = attrs.get("quorum")
    if isinstance(quorum, int | float) and quorum > 0:
        needed.append(int(quorum))
    pct = attrs.get("quorum_percent")
    if isinstance(pct, int | float) and pct > 0:
        needed.append(max(1, math.ceil(members * float(pct) / 100 - 1e-9)))
    if needed:
        return max(needed)
    if attrs.get("cluster_type", "cluster") in MAJORITY_TYPES:
        return members // 2 + 1
    return 1


def quorum_state(member_states: list[State], required: int) -> State:
    """A group's state from its members': down below quorum, degraded with any member lost or degraded."""
    alive = sum(1 for s in member_states if s < State.DOWN)
    if alive < required:
        return State.DOWN
    worst = max(member_states, default=State.OK)
    if worst >= State.DEGRADED:
        return State.DEGRADED
    return worst
