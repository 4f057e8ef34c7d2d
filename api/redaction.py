"""SPOF, expiry and change answers as a partition-limited token may see them, in every format.

The rule is the incident's (``api.visibility.redact_impact``): a CI the caller may not see is
counted under ``hidden``, never named; a path through one shows ``(hidden)`` in its place; a
service or item that is itself hidden is left out and counted. The Markdown and HTML renderings are
made from the redacted JSON, so no format says more than another. Free text (a change's reasons
and conflicts) names CIs: the names of hidden CIs the report touched give way to the placeholder.
"""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from api.visibility import HIDDEN, visible_ids
from cmdb.store.base import GraphStore
from impact.change import ChangeReport, change_dict


def _paths(services: list[dict[str, Any]]) -> set[str]:
    return {p for s in services for p in s.get("path_ids") or ()}


def _services(services: list[dict[str, Any]], seen: set[str]) -> tuple[list[dict[str, Any]], int]:
    """Services whose own CI (the last of the path) is visible, each path with placeholders; and how many left out."""
    kept = []
    for s in services:
        path = list(s.get("path_ids") or ())
        if path and path[-1] not in seen:
            continue
        kept.append({**s, "path": [n if p in seen else HIDDEN for n, p in zip(s["path"], path, strict=False)],
                     "path_ids": [p if p in seen else None for p in path]})
    return kept, len(services) - len(kept)


def _count(hidden: dict[str, int], key: str, n: int) -> None:
    if n:
        hidden[key] = hidden.get(key, 0) + n


def redact_spof(store: GraphStore, principal: Principal, items: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"items": [...], "hidden": {...}}`` of a SPOF list whose services carry ``path_ids`` (``hidden`` for a
    limited token only)."""
    if principal.partitions is None:
        return {"items": items}
    seen = visible_ids(store, principal, {i["id"] for i in items} | {p for i in items
                                                                   for p in _paths(i["services"])})
    hidden: dict[str, int] = {}
    out = []
    for item in items:
        if item["id"] not in seen:
            _count(hidden, "items", 1)
            continue
        services, gone = _services(item["services"], seen)
        _count(hidden, "services", gone)
        if services:
            out.append({**item, "services": services})
        else:
            _count(hidden, "items", 1)  # a SPOF only of services the caller may not see
    return {"items": out, "hidden": hidden}


def redact_expiry(store: GraphStore, principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """An expiry answer with hidden certificates and licences counted, services redacted as in incidents."""
    if principal.partitions is None:
        return data
    seen = visible_ids(store, principal, {i["id"] for i in data["expiring"]} | _paths(data["services"]))
    hidden: dict[str, int] = {}
    expiring = [i for i in data["expiring"] if i["id"] in seen]
    _count(hidden, "expiring", len(data["expiring"]) - len(expiring))
    services, gone = _services(data["services"], seen)
    _count(hidden, "services", gone)
    return {**data, "expiring": expiring, "services": services, "hidden": hidden}


def change_doc(store: GraphStore, principal: Principal, rep: ChangeReport) -> dict[str, Any]:
    """A change answer as the caller may see it: ``change_dict`` plus the services' ``path_ids``,
    redacted for a limited token (CIs changed, services, approvers and people to notify, free text)."""
    doc = change_dict(rep)
    for s, svc in zip(doc["services"], rep.services, strict=True):
        s["path_ids"] = list(svc.path_ids)
    if principal.partitions is None:
        return doc
    people = [*rep.approvers, *rep.stakeholders]
    touched = (set(rep.cis) | set(rep.radius.affected) | _paths(doc["services"]) | {p.id for p in people}
               | {r.ci_id for p in people for r in p.reasons}
               | {m for g in rep.radius.groups.values() for m in g.members})
    seen = visible_ids(store, principal, touched)
    hidden: dict[str, int] = {}
    cis = [c for c in doc["cis"] if c["id"] in seen]
    _count(hidden, "cis", len(doc["cis"]) - len(cis))
    services, gone = _services(doc["services"], seen)
    _count(hidden, "services", gone)
    visible_reasons = {p.id: sorted({r.ci_name for r in p.reasons if r.role == "change_approver" and r.ci_id in seen})
                       for p in rep.approvers}
    approvers = [{**a, "for": visible_reasons[p.id]} for a, p in zip(doc["approvers"], rep.approvers, strict=True)
                 if p.id in seen and visible_reasons[p.id]]
    _count(hidden, "approvers", len(doc["approvers"]) - len(approvers))
    notify = [n for n, p in zip(doc["notify"], rep.stakeholders, strict=True)
              if p.id in seen and any(r.ci_id in seen for r in p.reasons)]
    _count(hidden, "notify", len(doc["notify"]) - len(notify))
    gone_names = sorted({c.name for c in store.get_cis_brief(touched - seen).values() if c.name}, key=len,
                        reverse=True)

    def scrub(text: str) -> str:
        for name in gone_names:
            text = text.replace(name, HIDDEN)
        return text

    return {**doc, "cis": cis, "services": services, "approvers": approvers, "notify": notify,
            "reasons": [scrub(t) for t in doc["reasons"]], "conflicts": [scrub(t) for t in doc["conflicts"]],
            "affected_count": _affected(rep, seen, hidden), "hidden": hidden}


def _affected(rep: ChangeReport, seen: set[str], hidden: dict[str, int]) -> int:
    visible = len(set(rep.radius.affected) & seen)
    _count(hidden, "affected", len(rep.radius.affected) - visible)
    return visible
