"""Who gets a task, walked on the graph, with the reason stored on the task.

In order: the CI's owner (``OWNED_BY``); else its support team (``SUPPORTED_BY``); else the owner of the
most critical service that depends on it (the services at risk, worst tier first: ``SERVICE_OWNER``,
then ``OWNED_BY`` of that service); else the configured default queue. The reason reads like
"owner of Checkout, tier 1, which depends on it through lb-fra-1", so an assignee knows why it is theirs.

Assignment is worked out for many tasks at once (a cycle re-checks every open task for owner changes):
two ``neighbors`` calls and two ``get_cis`` calls, whatever the number of tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cmdb.store.base import CIState, GraphStore
from cmdb.store.tasks import Assignment
from impact.automation_config import QueueConfig

HOLDER_CLASSES = ("Person", "Team")


@dataclass(frozen=True)
class AssignItem:
    """A CI to assign, its display name, and the services at risk when it fails (worst first)."""

    ci_id: str
    name: str
    services: Sequence[Mapping[str, Any]] = ()  # {"id", "name", "tier", "path"} as stored on tasks


def assignment_to(holder: CIState, reason: str) -> Assignment:
    email = str(holder.attrs["email"]) if holder.attrs.get("email") else None
    if holder.cls == "Team":
        return Assignment(team_id=holder.id, team_name=holder.name or holder.id, team_email=email, reason=reason)
    return Assignment(person_id=holder.id, person_name=holder.name or holder.id, person_email=email, reason=reason)


def _holders(store: GraphStore, ids: Sequence[str], types: Sequence[str]) -> dict[str, dict[str, list[CIState]]]:
    """CI id -> relationship type -> active Persons/Teams it points to (Persons first, then by name)."""
    if not ids:
        return {}
    rels = store.neighbors(sorted(set(ids)), list(types), "out")
    found = store.get_cis_brief({r.dst for r in rels})
    out: dict[str, dict[str, list[CIState]]] = {}
    for r in rels:
        h = found.get(r.dst)
        if h is not None and h.status != "retired" and h.cls in HOLDER_CLASSES:
            out.setdefault(r.src, {}).setdefault(r.type, []).append(h)
    for by_type in out.values():
        for hs in by_type.values():
            hs.sort(key=lambda c: (c.cls != "Person", (c.name or c.id).lower(), c.id))
    return out


def assign_many(store: GraphStore, items: Sequence[AssignItem], queue: QueueConfig) -> dict[str, Assignment]:
    """CI id -> its assignment, following the order in the module docstring."""
    direct = _holders(store, [i.ci_id for i in items], ["OWNED_BY", "SUPPORTED_BY"])
    need_services = [i for i in items if i.ci_id not in direct]
    svc_ids = [str(s["id"]) for i in need_services for s in i.services if s.get("id") and s["id"] != i.ci_id]
    service_holders = _holders(store, svc_ids, ["SERVICE_OWNER", "OWNED_BY"])
    out: dict[str, Assignment] = {}
    for item in items:
        mine = direct.get(item.ci_id, {})
        if mine.get("OWNED_BY"):
            out[item.ci_id] = assignment_to(mine["OWNED_BY"][0], f"owner of {item.name}")
            continue
        if mine.get("SUPPORTED_BY"):
            out[item.ci_id] = assignment_to(mine["SUPPORTED_BY"][0], f"support team of {item.name}")
            continue
        out[item.ci_id] = _via_service(item, service_holders) or Assignment(
            team_name=queue.name, team_email=queue.email, queue=queue.name,
            reason=f"no owner, support team or service owner found for {item.name}: default queue")
    return out


def _via_service(item: AssignItem, holders: Mapping[str, Mapping[str, list[CIState]]]) -> Assignment | None:
    for svc in item.services:
        sid = str(svc.get("id", ""))
        if not sid or sid == item.ci_id:
            continue
        by_type = holders.get(sid, {})
        hs = by_type.get("SERVICE_OWNER") or by_type.get("OWNED_BY")
        if hs:
            via = list(svc.get("path") or [])[1:-1]
            how = f"through {', '.join(via)}" if via else "directly"
            tier = f", tier {svc['tier']}" if svc.get("tier") is not None else ""
            return assignment_to(hs[0], f"owner of {svc.get('name', sid)}{tier}, which depends on it {how}")
    return None


def assign(store: GraphStore, item: AssignItem, queue: QueueConfig) -> Assignment:
    """The assignee of a task on one CI."""
    return assign_many(store, [item], queue)[item.ci_id]


def same_assignee(a: Assignment, b: Assignment) -> bool:
    return (a.person_id, a.team_id, a.queue) == (b.person_id, b.team_id, b.queue)


def recipient_of(a: Assignment) -> tuple[str, str | None]:
    """(display name, e-mail) to notify for an assignment: the person, else the team or queue."""
    if a.person_id or a.person_name:
        return a.person_name or a.person_id or "", a.person_email or a.team_email
    return a.team_name or a.queue or "", a.team_email
