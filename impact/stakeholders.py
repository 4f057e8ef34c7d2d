"""Who must hear about an impact: owners, support teams, service owners, approvers, subscribers.

Stakeholder edges are declared in the schema (``stakeholder:`` role, ``stakeholder_side``), so a new
role is a schema change. Each person or team appears once, with every (role, CI) that brought them
in, ordered by the worst service tier they are tied to: a CI's tier is the lowest tier of the
affected services it feeds (a Service's own tier for the Service itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cmdb.store.base import GraphStore
from impact.index import MemoryIndex
from impact.radius import BlastRadius
from impact.source import NodeInfo, node_info
from impact.states import State

ROLE_ORDER = ("service_owner", "change_approver", "owner", "support", "subscriber")
CONTACT_ATTRS = ("email", "phone", "chat", "oncall")


def role_rank(role: str) -> int:
    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


def role_key(role: str) -> tuple[int, str]:
    """The order roles are listed in: ``ROLE_ORDER``, then other roles by name."""
    return role_rank(role), role


@dataclass(frozen=True)
class StakeholderReason:
    """One (role, affected CI) pair that makes someone a stakeholder."""

    role: str
    ci_id: str
    ci_name: str
    state: State
    tier: int | None


@dataclass
class Stakeholder:
    id: str
    name: str
    kind: str  # Person or Team
    contact: dict[str, str]
    reasons: list[StakeholderReason] = field(default_factory=list)
    reasons_total: int | None = None  # every reason, when ``reasons`` keeps only the first few
    summary: tuple[tuple[str, ...], int | None] | None = None  # roles and worst tier over every reason, when cut

    @property
    def roles(self) -> list[str]:
        if self.summary is not None:
            return list(self.summary[0])
        return sorted({r.role for r in self.reasons}, key=role_key)

    @property
    def worst_tier(self) -> int | None:
        if self.summary is not None:
            return self.summary[1]
        tiers = [r.tier for r in self.reasons if r.tier is not None]
        return min(tiers) if tiers else None

    def sort_key(self) -> tuple[int, int, int, str, str]:
        worst_state = max((r.state for r in self.reasons), default=State.OK)
        tier = self.worst_tier
        return (tier if tier is not None else 99, -worst_state, role_rank(self.roles[0]) if self.reasons else 99,
                self.name.lower(), self.id)


def _stakeholder_pairs(store: GraphStore, radius: BlastRadius, roles: Mapping[str, tuple[str, str]],
                       ) -> tuple[list[tuple[str, str, str]], Mapping[str, NodeInfo]]:
    """(stakeholder id, role, affected CI id) pairs and the stakeholders not retired: from the source's
    memory when it keeps them (the API's warm ``MemoryIndex``), else one ``neighbors`` read of the store."""
    affected = radius.affected
    source = radius.source
    if isinstance(source, MemoryIndex):
        kept = source.stakeholders_of(affected)
        if kept is not None:
            return kept, source.people
    pairs: list[tuple[str, str, str]] = []
    for rel in store.neighbors(sorted(affected), sorted(roles), "both"):
        role, side = roles[rel.type]
        who, what = (rel.src, rel.dst) if side == "source" else (rel.dst, rel.src)
        if what in affected and who != what:
            pairs.append((who, role, what))
    people = {i: node_info(c) for i, c in store.get_cis_brief({p[0] for p in pairs}).items() if c.status != "retired"}
    return pairs, people


def gather_stakeholders(store: GraphStore, radius: BlastRadius) -> list[Stakeholder]:
    """Stakeholders of every affected CI (causes included), deduplicated, worst tier first."""
    return first_stakeholders(store, radius)[0]


def first_stakeholders(store: GraphStore, radius: BlastRadius, limit: int | None = None,
                       max_reasons: int | None = None) -> tuple[list[Stakeholder], int]:
    """``gather_stakeholders``, cut to size, and how many there are in all.

    ``limit`` keeps the first stakeholders and ``max_reasons`` the first reasons of each (their
    ``reasons_total``, roles and worst tier still count every reason): a core switch of a 100k-CI
    estate has 3,000 stakeholders with 40,000 reasons, and building them all cost more than the
    rest of the analysis. Each stakeholder is ranked from plain aggregates first; only the kept
    ones get their reasons built, named and sorted.
    """
    roles = radius.source.rules.stakeholders
    affected = radius.affected
    if not affected or not roles:
        return [], 0
    fast = radius.fast_stakeholders(limit, max_reasons)
    if fast is not None:
        return fast
    tiers = radius.service_tiers()
    pairs, people = _stakeholder_pairs(store, radius, roles)
    rank_of = {role: role_rank(role) for role, _side in roles.values()}
    agg: dict[str, list[int]] = {}  # who -> [best tier (99: none), worst state, best role rank]: one pass
    for who, role, what in pairs:
        if who not in people:
            continue
        t, st, rr = tiers.get(what, 99), affected[what], rank_of[role]
        a = agg.get(who)
        if a is None:
            agg[who] = [t, st, rr]
        else:
            if t < a[0]:
                a[0] = t
            if st > a[1]:
                a[1] = st
            if rr < a[2]:
                a[2] = rr
    ranked = sorted((t, -st, rr, (people[who].name or who).lower(), who) for who, (t, st, rr) in agg.items())
    chosen = ranked if limit is None else ranked[:limit]
    keep = {k[-1] for k in chosen}
    by_who: dict[str, set[tuple[str, str]]] = {}
    for who, role, what in pairs:
        if who in keep:
            by_who.setdefault(who, set()).add((role, what))
    ci_names = radius.source.describe({w for reasons in by_who.values() for _, w in reasons})
    out: list[Stakeholder] = []
    for t, _st, _rr, _name, who in chosen:
        person = people[who]
        contact = {k: str(person.attrs[k]) for k in CONTACT_ATTRS if person.attrs.get(k)}
        why = [StakeholderReason(role, what, ci_names[what].name if what in ci_names else what, affected[what],
                                 tiers.get(what)) for role, what in sorted(by_who[who])]
        why.sort(key=lambda r: (r.tier if r.tier is not None else 99, -r.state, role_rank(r.role), r.ci_name))
        total = len(why)
        cut = max_reasons is not None and total > max_reasons
        summary = (tuple(sorted({r.role for r in why}, key=role_key)), None if t == 99 else t)
        out.append(Stakeholder(who, person.name or who, person.cls, contact, why[:max_reasons] if cut else why,
                               total, summary if cut else None))
    return out, len(ranked)
