"""The expiry rule: one task per CI and expiry date, raised, escalated, reassigned, resolved or cancelled.

``run_expiry_cycle`` is one pass, safe to repeat and to run from two processes at once:

* a certificate or licence whose expiry is inside a threshold (default 90, 30, 7 days and expired;
  per class and per worst service tier at risk) gets a task, unique in the store on (kind, CI, expiry):
  a second raiser gets the stored task back, and notices are keyed so none is queued twice;
* crossing a tighter threshold raises the priority (impact x urgency matrix, impact from the worst
  service at risk when the CI lapses, urgency from the days left) and notifies again;
* the assignee is re-worked every cycle (``impact.assign``): an owner change reassigns the open task and
  tells the new assignee;
* a renewal resolves the task with a note naming the new certificate: a later ``not_after`` on a
  certificate with the same subject, or served in the same place (same endpoint or application, leaf
  for leaf); a licence whose ``expires`` moved later is renewed too; a retired CI cancels its task.

Only candidates inside the largest threshold are read, by the store's expiry range filter, and the
blast radius is computed only when a task is raised or escalated, so an idle cycle is a few bulk reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmdb.store.base import GraphStore, iso, parse_iso
from cmdb.store.tasks import ACTIVE_STATES, ExpiringCI, OutboxMessage, Task, TaskQuery, new_task
from impact.assign import AssignItem, assign_many, same_assignee
from impact.automation_config import AutomationConfig
from impact.engine import blast_radius
from impact.outbox import task_messages
from impact.priority import PriorityMatrix
from impact.source import StoreSource
from impact.states import State

KIND_OF_CLASS = {"Certificate": "certificate_expiry", "License": "licence_expiry"}
EXPIRY_KINDS = tuple(KIND_OF_CLASS.values())
FAR_FUTURE = timedelta(days=365 * 200)
PAGE = 1000


@dataclass
class CycleReport:
    """What one cycle did (or, dry, would do): counts and one line per action."""

    at: str
    dry_run: bool
    raised: int = 0
    escalated: int = 0
    reassigned: int = 0
    resolved: int = 0
    cancelled: int = 0
    unchanged: int = 0
    queued: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("at", "dry_run", "raised", "escalated", "reassigned", "resolved",
                                               "cancelled", "unchanged", "queued")}


def expiry_time(text: str) -> datetime:
    """A stored expiry as a time: a date expires at its end."""
    return parse_iso(text if "T" in text else f"{text}T23:59:59Z")


def threshold_label(days: int) -> str:
    return "expired" if days == 0 else f"{days}d"


def _threshold_days(label: str | None) -> int | None:
    if not label:
        return None
    return 0 if label == "expired" else int(label.rstrip("d"))


def crossed(days_left: float, thresholds: Iterable[int]) -> int | None:
    """The tightest threshold ``days_left`` is inside (0 once expired), or None when outside them all."""
    inside = [d for d in thresholds if (days_left <= 0 if d == 0 else days_left <= d)]
    return min(inside) if inside else None


def _worst_tier(services: Iterable[dict[str, Any]]) -> int | None:
    tiers = [int(s["tier"]) for s in services if s.get("tier") is not None]
    return min(tiers) if tiers else None


class _Cycle:
    def __init__(self, store: GraphStore, now: datetime, config: AutomationConfig, dry_run: bool,
                 matrix: PriorityMatrix) -> None:
        self.store, self.now, self.cfg, self.dry, self.matrix = store, now, config, dry_run, matrix
        self.tasks_cfg = config.tasks
        self.report = CycleReport(iso(now), dry_run)
        self.source = StoreSource(store)
        self.outbox: list[OutboxMessage] = []

    # -- the pieces -----------------------------------------------------------------------------
    def at_risk(self, ci_id: str) -> tuple[list[dict[str, Any]], str, str]:
        """Services at risk when ``ci_id`` lapses (worst first), the impact level and its reason."""
        radius = blast_radius(self.source, {ci_id: State.DOWN})
        services = radius.services()
        impact, _reason = self.matrix.impact_of(services)
        return ([{"id": s.id, "name": s.name, "tier": s.tier, "state": s.state.label, "path": list(s.path)}
                 for s in services], impact, _reason)

    def priority(self, impact: str, urgency: str) -> str:
        return self.matrix.matrix[impact][urgency]

    def note(self, action: str, task: Task | None, ci: str, **extra: Any) -> None:
        self.report.actions.append({"action": action, "task": task.id if task else None, "ci": ci, **extra})

    def notify(self, task: Task, event: str) -> None:
        self.outbox.extend(task_messages(self.cfg, task, event, self.now))

    # -- the pass -------------------------------------------------------------------------------
    def run(self) -> CycleReport:
        horizon = self.now + timedelta(days=self.tasks_cfg.horizon_days())
        candidates = self.store.expiring_cis(until=horizon)
        active = self._active_tasks()
        cert_ids = {c.id for c in candidates if c.cls == "Certificate"} | {
            t.ci_id for t in active if t.kind == "certificate_expiry"}
        renewals = self._renewals(cert_ids) if cert_ids else {}
        current = self.store.get_cis_brief({t.ci_id for t in active})
        handled: set[tuple[str, str, str]] = set()
        keep: list[Task] = []
        for task in active:
            handled.add(task.key)
            ci = current.get(task.ci_id)
            if ci is None or ci.status == "retired":
                self._close(task, "cancelled", f"{task.ci_name or task.ci_id} is retired; nothing left to renew"
                            if ci else "the CI no longer exists")
                continue
            new_expiry = ci.attrs.get("expires" if ci.cls == "License" else "not_after")
            if task.kind == "certificate_expiry" and task.ci_id in renewals:
                self._close(task, "resolved", renewals[task.ci_id])
                continue
            if new_expiry and expiry_time(str(new_expiry)) > expiry_time(task.expiry):
                self._close(task, "resolved", f"renewed: {ci.name or ci.id} now expires {new_expiry}")
                continue
            keep.append(task)
        self._reassign(keep)
        self._escalate(keep)
        existing = self.store.find_tasks(
            [(KIND_OF_CLASS[c.cls], c.id, c.expiry) for c in candidates if (KIND_OF_CLASS[c.cls], c.id, c.expiry)
             not in handled])
        fresh = [c for c in candidates if (KIND_OF_CLASS[c.cls], c.id, c.expiry) not in handled  # done above
                 and (KIND_OF_CLASS[c.cls], c.id, c.expiry) not in existing  # closed ones stay closed
                 and not (c.cls == "Certificate" and c.id in renewals)]  # already superseded
        self._raise_all(fresh)
        if self.outbox and not self.dry:
            self.report.queued = sum(self.store.enqueue_messages(self.outbox))
        elif self.dry:
            self.report.queued = len(self.outbox)
        return self.report

    def _active_tasks(self) -> list[Task]:
        out: list[Task] = []
        while True:
            page = self.store.list_tasks(TaskQuery(states=list(ACTIVE_STATES), kinds=list(EXPIRY_KINDS), limit=PAGE,
                                                   offset=len(out)))
            out.extend(page)
            if len(page) < PAGE:
                return out

    def _renewals(self, cert_ids: set[str]) -> dict[str, str]:
        """Certificate id -> a note naming the certificate that renews it (later expiry, same subject or place)."""
        everything = {c.id: c for c in self.store.expiring_cis(until=self.now + FAR_FUTURE,
                                                               classes={"Certificate": "not_after"})}
        latest_by_name: dict[str, ExpiringCI] = {}
        for c in everything.values():
            if c.name and (c.name not in latest_by_name or c.expiry > latest_by_name[c.name].expiry):
                latest_by_name[c.name] = c
        found: dict[str, ExpiringCI] = {}
        for cid in cert_ids:
            me = everything.get(cid)
            if me is None or not me.name:
                continue
            later = latest_by_name.get(me.name)
            if later is not None and later.id != cid and expiry_time(later.expiry) > expiry_time(me.expiry):
                found[cid] = later
        # Leaf for leaf in the same place: whatever uses the old certificate now also uses a later one.
        users = self.store.neighbors(sorted(cert_ids), ["USES_CERTIFICATE"], "in")
        leaf_users = {(r.src, r.dst) for r in users if r.attrs.get("chain_position", 0) in (0, None)}
        if leaf_users:
            peers = self.store.neighbors(sorted({u for u, _ in leaf_users}), ["USES_CERTIFICATE"], "out")
            by_user: dict[str, list[ExpiringCI]] = {}
            for r in peers:
                if r.attrs.get("chain_position", 0) in (0, None) and r.dst in everything:
                    by_user.setdefault(r.src, []).append(everything[r.dst])
            for user, cid in leaf_users:
                me = everything.get(cid)
                if me is None or cid in found:
                    continue
                later_ones = [p for p in by_user.get(user, []) if p.id != cid
                              and expiry_time(p.expiry) > expiry_time(me.expiry)]
                if later_ones:
                    found[cid] = max(later_ones, key=lambda p: p.expiry)
        return {cid: f"renewed: certificate {c.name or c.id} ({c.id}) valid until {c.expiry} replaces it"
                for cid, c in found.items()}

    def _close(self, task: Task, state: str, note: str) -> None:
        setattr(self.report, state, getattr(self.report, state) + 1)
        self.note(state, task, task.ci_name or task.ci_id, note=note)
        if not self.dry:
            self.store.transition_task(task.id, state, actor=self.tasks_cfg.actor, now=self.now, note=note)

    def _escalate(self, tasks: list[Task]) -> None:
        for task in tasks:
            left = (expiry_time(task.expiry) - self.now).total_seconds() / 86400
            cls = "License" if task.kind == "licence_expiry" else "Certificate"
            level = crossed(left, self.tasks_cfg.thresholds(cls, _worst_tier(task.services_at_risk)))
            old = _threshold_days(task.threshold)
            if level is None or (old is not None and level >= old):
                self.report.unchanged += 1
                continue
            services, impact, _why = self.at_risk(task.ci_id)
            urgency = self.tasks_cfg.urgency_for(left)
            prio = self.priority(impact, urgency)
            label = threshold_label(level)
            note = f"crossed the {label} threshold" if level else "expired"
            self.report.escalated += 1
            self.note("escalated", task, task.ci_name or task.ci_id, threshold=label, priority=prio)
            details = {**task.details, "urgency": urgency, "impact": impact}
            if self.dry:
                continue
            updated = self.store.update_task(task.id, actor=self.tasks_cfg.actor, now=self.now, note=note,
                                             priority=prio, threshold=label, services_at_risk=services,
                                             details=details)
            task.priority, task.threshold, task.services_at_risk = prio, label, services
            self.notify(updated, "escalated")

    def _reassign(self, tasks: list[Task]) -> None:
        if not tasks:
            return
        items = [AssignItem(t.ci_id, t.ci_name or t.ci_id, t.services_at_risk) for t in tasks]
        wanted = assign_many(self.store, items, self.tasks_cfg.default_queue)
        for task in tasks:
            new = wanted[task.ci_id]
            if same_assignee(task.assignee, new):
                continue
            self.report.reassigned += 1
            self.note("reassigned", task, task.ci_name or task.ci_id, reason=new.reason)
            if not self.dry:
                updated = self.store.update_task(task.id, actor=self.tasks_cfg.actor, now=self.now,
                                                 note=f"reassigned: {new.reason}", assignee=new)
                self.notify(updated, "reassigned")

    def _raise_all(self, fresh: list[ExpiringCI]) -> None:
        """Tasks for CIs inside a threshold and without one; assigned together (one graph walk for all)."""
        ready: list[tuple[ExpiringCI, float, int, list[dict[str, Any]], str, str]] = []
        for c in fresh:
            left = (expiry_time(c.expiry) - self.now).total_seconds() / 86400
            if not self.tasks_cfg.by_tier and crossed(left, self.tasks_cfg.thresholds(c.cls, None)) is None:
                continue  # outside every threshold whatever its tier: no blast radius needed
            services, impact, why = self.at_risk(c.id)
            level = crossed(left, self.tasks_cfg.thresholds(c.cls, _worst_tier(services)))
            if level is not None:
                ready.append((c, left, level, services, impact, why))
        if not ready:
            return
        assignees = assign_many(self.store, [AssignItem(c.id, c.name or c.id, services)
                                             for c, _l, _v, services, _i, _w in ready], self.tasks_cfg.default_queue)
        for c, left, level, services, impact, why in ready:
            urgency = self.tasks_cfg.urgency_for(left)
            prio = self.priority(impact, urgency)
            name, assignee = c.name or c.id, assignees[c.id]
            task = new_task(KIND_OF_CLASS[c.cls], c.id, c.expiry, now=self.now, actor=self.tasks_cfg.actor,
                            priority=prio, due=iso(expiry_time(c.expiry)), ci_name=name,
                            threshold=threshold_label(level), assignee=assignee, services_at_risk=services,
                            details={"class": c.cls, "urgency": urgency, "impact": impact, "impact_reason": why},
                            note=f"{name} expires {c.expiry}; inside the {threshold_label(level)} threshold")
            self.note("raised", task, name, threshold=task.threshold, priority=prio, assignee=assignee.reason)
            if self.dry:
                self.report.raised += 1
                self.notify(task, "raised")  # counted, not queued
                continue
            stored, created = self.store.raise_task(task)
            if created:
                self.report.raised += 1
                self.notify(stored, "raised")
            else:
                self.report.unchanged += 1

def run_expiry_cycle(store: GraphStore, now: datetime, config: AutomationConfig, dry_run: bool = False,
                     matrix: PriorityMatrix | None = None) -> CycleReport:
    """One expiry cycle at ``now`` (an injected clock); see the module docstring."""
    return _Cycle(store, now, config, dry_run, matrix or PriorityMatrix.load()).run()
