"""Who must hear about an impact: owners, support teams, service owners, approvers, subscribers.

Stakeholder edges are declared in the schema (``stakeholder:`` role, ``stakeholder_side``), so a new
role is a schema change. Each person or team appears once, with every (role, CI) that brought them
in, ordered by the worst service tier they are tied to: a CI's tier is the lowest tier of the
affected services it feeds (a Service's own tier for the Service itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cmdb.store.base import GraphStore
from impact.radius import BlastRadius
from impact.states import State

ROLE_ORDER = ("service_owner", "change_approver", "owner", "support", "subscriber")
CONTACT_ATTRS = ("email", "phone", "chat", "oncall")


def _role_rank(role: str) -> int:
    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


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

    @property
    def roles(self) -> list[str]:
        return sorted({r.role for r in self.reasons}, key=_role_rank)

    @property
    def worst_tier(self) -> int | None:
        tiers = [r.tier for r in self.reasons if r.tier is not None]
        return min(tiers) if tiers else None

    def sort_key(self) -> tuple[int, int, int, str, str]:
        worst_state = max((r.state for r in self.reasons), default=State.OK)
        tier = self.worst_tier
        return (tier if tier is not None else 99, -worst_state, _role_rank(self.roles[0]) if self.reasons else 99,
                self.name.lower(), self.id)


def gather_stakeholders(store: GraphStore, radius: BlastRadius) -> list[Stakeholder]:
    """Stakeholders of every affected CI (causes included), deduplicated, worst tier first."""
    roles = radius.source.rules.stakeholders
    affected = radius.affected
    if not affected or not roles:
        return []
    tiers = radius.service_tiers()
    pairs: list[tuple[str, str, str]] = []  # (stakeholder id, role, affected CI id)
    for rel in store.neighbors(sorted(affected), sorted(roles), "both"):
        role, side = roles[rel.type]
        who, what = (rel.src, rel.dst) if side == "source" else (rel.dst, rel.src)
        if what in affected and who != what:
            pairs.append((who, role, what))
    people = store.get_cis({p[0] for p in pairs})
    ci_names = radius.source.describe({p[2] for p in pairs})
    out: dict[str, Stakeholder] = {}
    seen: set[tuple[str, str, str]] = set()
    for who, role, what in sorted(pairs):
        person = people.get(who)
        if person is None or person.status == "retired" or (who, role, what) in seen:
            continue
        seen.add((who, role, what))
        sh = out.get(who)
        if sh is None:
            contact = {k: str(person.attrs[k]) for k in CONTACT_ATTRS if person.attrs.get(k)}
            sh = out[who] = Stakeholder(who, person.name or who, person.cls, contact)
        name = ci_names[what].name if what in ci_names else what
        sh.reasons.append(StakeholderReason(role, what, name, affected[what], tiers.get(what)))
    for sh in out.values():
        sh.reasons.sort(key=lambda r: (r.tier if r.tier is not None else 99, -r.state, _role_rank(r.role), r.ci_name))
    return sorted(out.values(), key=Stakeholder.sort_key)
