"""Licence entitlements against consumption, and the ``licence_compliance`` task for over-use.

A licence (``License`` CI, ``entitlements`` seats) is consumed by every active CI that is
``LICENSED_BY`` it: software installs and hosts alike, one seat each. ``licence_usage`` counts them
for every licence in two bulk reads per page of licences; ``check_compliance`` raises one
``licence_compliance`` task per over-used licence for its owner (the assignment walk of
``impact.assign``: owner, support team, owner of the most critical service using it, default queue),
updates it while the over-use changes, and resolves it once the licence is back within its
entitlement.

The date part of a compliance task's key (``expiry``) is the day the over-use was first seen: one
task per episode of over-use; re-running never raises a second while one is open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmdb.store.base import GraphStore, SearchQuery, iso
from cmdb.store.tasks import ACTIVE_STATES, OutboxMessage, Task, TaskQuery, new_task
from impact.assign import AssignItem, assign_many
from impact.automation_config import AutomationConfig
from impact.engine import blast_radius
from impact.outbox import task_messages
from impact.priority import PriorityMatrix
from impact.source import StoreSource
from impact.states import State

COMPLIANCE_KIND = "licence_compliance"
INSTALL_CLASSES = ("SoftwareInstall",)
COMPLIANCE_DUE_DAYS = 30
PAGE = 1000


@dataclass
class LicenceUsage:
    """One licence: seats entitled and used (installs + hosts), the balance and the expiry."""

    id: str
    name: str
    product: str | None
    vendor: str | None
    entitled: int | None
    used: int
    installs: int
    hosts: int
    expires: str | None
    consumers: list[str] = field(default_factory=list)

    @property
    def balance(self) -> int | None:
        """Seats left (negative when over-used); None when no entitlement is recorded."""
        return None if self.entitled is None else self.entitled - self.used

    @property
    def status(self) -> str:
        if self.entitled is None:
            return "unknown"
        if self.used > self.entitled:
            return "over"
        return "at" if self.used == self.entitled else "under"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "balance": self.balance, "status": self.status}


def licence_usage(store: GraphStore, product: str | None = None) -> list[LicenceUsage]:
    """Every non-retired licence (of ``product`` if given) with its consumption, by product and name."""
    out: list[LicenceUsage] = []
    offset = 0
    while True:
        page = store.search(SearchQuery(classes=["License"], limit=PAGE, offset=offset))
        offset += len(page.items)
        lics = [c for c in page.items if c.status != "retired"
                and (product is None or str(c.attrs.get("product", "")).lower() == product.lower())]
        if lics:
            out.extend(_count(store, lics))
        if len(page.items) < PAGE:
            break
    return sorted(out, key=lambda u: ((u.product or "").lower(), u.name.lower(), u.id))


def _count(store: GraphStore, lics: list[Any]) -> list[LicenceUsage]:
    edges = store.neighbors([c.id for c in lics], ["LICENSED_BY"], "in")
    consumers = store.get_cis_brief({r.src for r in edges})
    by_lic: dict[str, set[str]] = {}
    for r in edges:
        c = consumers.get(r.src)
        if c is not None and c.status != "retired":
            by_lic.setdefault(r.dst, set()).add(c.id)
    usages = []
    for lic in lics:
        ids = sorted(by_lic.get(lic.id, set()))
        installs = sum(1 for i in ids if consumers[i].cls in INSTALL_CLASSES)
        entitled = lic.attrs.get("entitlements")
        usages.append(LicenceUsage(
            id=lic.id, name=lic.name or lic.id, product=lic.attrs.get("product"), vendor=lic.attrs.get("vendor"),
            entitled=int(entitled) if entitled is not None else None, used=len(ids), installs=installs,
            hosts=len(ids) - installs, expires=lic.attrs.get("expires"), consumers=ids,
        ))
    return usages


@dataclass
class ComplianceReport:
    at: str
    dry_run: bool
    over: int = 0
    raised: int = 0
    updated: int = 0
    resolved: int = 0
    unchanged: int = 0
    queued: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("at", "dry_run", "over", "raised", "updated", "resolved", "unchanged",
                                               "queued")}


def _over_note(u: LicenceUsage) -> str:
    return (f"{u.name} ({u.product}) uses {u.used} of {u.entitled} seats: {-(u.balance or 0)} over"
            f" ({u.installs} installs, {u.hosts} hosts)")


def check_compliance(
    store: GraphStore,
    now: datetime,
    config: AutomationConfig,
    *,
    dry_run: bool = False,
    matrix: PriorityMatrix | None = None,
    usages: list[LicenceUsage] | None = None,
) -> ComplianceReport:
    """Raise, update or resolve ``licence_compliance`` tasks at ``now`` (an injected clock)."""
    matrix = matrix or PriorityMatrix.load()
    actor = config.tasks.actor
    report = ComplianceReport(iso(now), dry_run)
    usages = licence_usage(store) if usages is None else usages
    by_id = {u.id: u for u in usages}
    active: dict[str, Task] = {}
    offset = 0
    while True:
        page = store.list_tasks(TaskQuery(kinds=[COMPLIANCE_KIND], states=list(ACTIVE_STATES), limit=PAGE,
                                          offset=offset))
        offset += len(page)
        active.update((t.ci_id, t) for t in page)
        if len(page) < PAGE:
            break
    outbox: list[OutboxMessage] = []

    # Open tasks first: back within the entitlement (or gone) resolves; a changed count updates.
    for lic_id, task in active.items():
        u = by_id.get(lic_id)
        if u is None or u.status != "over":
            note = (f"back within its entitlement: {u.used} of {u.entitled} seats used" if u is not None
                    else "the licence is retired or gone")
            report.resolved += 1
            report.actions.append({"action": "resolved", "task": task.id, "ci": task.ci_name, "note": note})
            if not dry_run:
                store.transition_task(task.id, "resolved", actor=actor, now=now, note=note)
            continue
        if task.details.get("used") == u.used and task.details.get("entitled") == u.entitled:
            report.unchanged += 1
            continue
        report.updated += 1
        report.actions.append({"action": "updated", "task": task.id, "ci": u.name, "note": _over_note(u)})
        if not dry_run:
            store.update_task(task.id, actor=actor, now=now, note=_over_note(u),
                              details={**task.details, **_counts(u)})

    # Newly over-used licences: one task each, for the licence's owner.
    fresh = [u for u in usages if u.status == "over" and u.id not in active]
    report.over = sum(1 for u in usages if u.status == "over")
    services = {u.id: _at_risk(store, u.id, matrix) for u in fresh}
    holders = assign_many(store, [AssignItem(u.id, u.name, services[u.id][0]) for u in fresh],
                          config.tasks.default_queue) if fresh else {}
    for u in fresh:
        at_risk, impact, why = services[u.id]
        prio = matrix.matrix[impact]["medium"]
        task = new_task(COMPLIANCE_KIND, u.id, now.date().isoformat(), now=now, actor=actor, priority=prio,
                        due=iso(now + timedelta(days=COMPLIANCE_DUE_DAYS)), ci_name=u.name,
                        assignee=holders[u.id], services_at_risk=at_risk,
                        details={"class": "License", "urgency": "medium", "impact": impact, "impact_reason": why,
                                 **_counts(u)},
                        note=_over_note(u))
        report.actions.append({"action": "raised", "task": task.id, "ci": u.name, "note": _over_note(u),
                               "assignee": holders[u.id].reason})
        if dry_run:
            report.raised += 1
            continue
        stored, created = store.raise_task(task)
        if created:
            report.raised += 1
            outbox.extend(task_messages(config, stored, "raised", now))
        else:
            report.unchanged += 1
    if outbox and not dry_run:
        report.queued = sum(store.enqueue_messages(outbox))
    return report


def _counts(u: LicenceUsage) -> dict[str, Any]:
    return {"product": u.product, "entitled": u.entitled, "used": u.used, "installs": u.installs, "hosts": u.hosts,
            "over_by": -(u.balance or 0)}


def _at_risk(store: GraphStore, lic_id: str, matrix: PriorityMatrix) -> tuple[list[dict[str, Any]], str, str]:
    """Services hurt if the licence is withdrawn (``LICENSED_BY`` degrades its users), worst first."""
    radius = blast_radius(StoreSource(store), {lic_id: State.DOWN})
    services = radius.services()
    impact, why = matrix.impact_of(services)
    return ([{"id": s.id, "name": s.name, "tier": s.tier, "state": s.state.label, "path": list(s.path)}
             for s in services], impact, why)
