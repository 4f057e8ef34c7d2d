"""Notification drafts: one message per stakeholder group, answering who, what, where, when, why, how.

Groups follow the role a stakeholder plays (service owners, approvers, owners, support,
subscribers), because each needs a different ask; the facts (services and their state, locations,
components, start time, workaround, contact) are the same for all. Drafts are text for a human to
send, not sent from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmdb.history import dependencies
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore
from impact.radius import AffectedService, BlastRadius
from impact.stakeholders import Stakeholder

ASKS = {
    "service_owner": "Please confirm the business impact and decide on customer communication.",
    "change_approver": "Please review: changes on these CIs need your approval.",
    "owner": "Please investigate the CIs you own that are listed below.",
    "support": "Please take up the support tickets for the affected components.",
    "subscriber": "For your information; no action needed unless you see more impact.",
}


@dataclass(frozen=True)
class NotificationDraft:
    role: str
    to: tuple[str, ...]  # "Name <email>" or the name when no e-mail is known
    subject: str
    body: str


def locations(store: GraphStore, radius: BlastRadius, depth: int = 4) -> list[str]:
    """Racks, rooms and sites the causes sit in, directly or through what they run on (VM -> host -> rack)."""
    schema = store_schema(store)
    near: set[str] = set()
    for c in radius.causes:
        near |= set(dependencies(store, schema, c, depth))
    return sorted(c.name or c.id for c in store.get_cis(near).values() if schema.is_a(c.cls, "Location"))


def drafts(store: GraphStore, radius: BlastRadius, services: list[AffectedService], stakeholders: list[Stakeholder],
           title: str, start: str, workaround: str | None = None, contact: str | None = None
           ) -> list[NotificationDraft]:
    """One draft per role present among ``stakeholders``."""
    causes = radius.source.describe(radius.causes)
    what = ", ".join(causes[c].name if c in causes else c for c in radius.causes)
    svc_lines = [f"  - {s.name} (tier {s.tier}): {s.state.label} because {' -> '.join(s.path)}" for s in services]
    where = locations(store, radius)
    base = [
        f"What: {title}. Failed or changed: {what}.",
        f"When: since {start}.",
        "Where: " + (", ".join(where) if where else "no location recorded") + ".",
        "Impacted services:" if svc_lines else "Impacted services: none found.",
        *svc_lines,
        f"Components affected: {len(radius.affected)} CIs.",
        f"Workaround: {workaround or 'none known yet'}.",
        f"Contact: {contact or 'the incident manager on duty'}.",
    ]
    out = []
    for role in ASKS:
        people = [s for s in stakeholders if role in s.roles]
        if not people:
            continue
        to = tuple(f"{p.name} <{p.contact['email']}>" if "email" in p.contact else p.name for p in people)
        mine = sorted({r.ci_name for p in people for r in p.reasons if r.role == role})
        worst = services[0] if services else None
        subject = f"[{worst.state.label.upper() if worst else 'INFO'}] {title}" + (
            f": {worst.name} (tier {worst.tier})" if worst else "")
        body = "\n".join([*base, "", f"Why you: {role.replace('_', ' ')} of {', '.join(mine)}.", ASKS[role]])
        out.append(NotificationDraft(role, to, subject, body))
    return out
