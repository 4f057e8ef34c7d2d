"""Incident analysis: blast radius, affected services, stakeholders, priority and recent changes.

One function gathers what an incident manager asks first, so the CLI, the API and tests share it;
``report_dict`` is the JSON shape both outputs are made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.history import dependencies, resolve_ci
from cmdb.model import Schema
from cmdb.schema_store import store_schema
from cmdb.store.base import Event, GraphStore, iso
from impact.asof import index_as_of
from impact.engine import AffectedService, BlastRadius, blast_radius
from impact.index import MemoryIndex
from impact.priority import Priority, PriorityMatrix
from impact.records import Record, covers, overlaps, records_on
from impact.source import ImpactSource, StoreSource
from impact.stakeholders import Stakeholder, first_stakeholders
from impact.states import State

RECENT_DEPTH = 2  # how far below each cause to look for recent changes
RECENT_LIMIT = 50


@dataclass
class IncidentReport:
    causes: list[str]
    mode: State
    as_of: str | None
    radius: BlastRadius
    services: list[AffectedService]
    stakeholders: list[Stakeholder]
    priority: Priority
    recent_changes: list[Event]
    related_incidents: list[Record] = field(default_factory=list)
    change_records: list[Record] = field(default_factory=list)
    in_maintenance: dict[str, str] = field(default_factory=dict)  # CI id -> key of the change it is under
    stakeholders_total: int | None = None  # all of them, when ``stakeholders`` keeps the first few


def analyse_incident(
    store: GraphStore,
    refs: Sequence[str],
    mode: State = State.DOWN,
    urgency: str = "medium",
    matrix: PriorityMatrix | None = None,
    as_of: str | None = None,
    recent_days: int = 7,
    schema: Schema | None = None,
    source: ImpactSource | None = None,
    max_stakeholders: int | None = None,
    max_reasons: int | None = None,
) -> IncidentReport:
    """Impact of ``refs`` (ids, names or identity values) failing in ``mode``, now or at ``as_of``.

    ``max_stakeholders`` and ``max_reasons`` keep only the first stakeholders and reasons (counted in
    full): the API's answers are cut that way, and building the rest is most of the work on a large estate."""
    schema = schema or store_schema(store)
    matrix = matrix or PriorityMatrix.load()
    causes = [resolve_ci(store, schema, r) for r in refs]
    if source is None:
        source = index_as_of(store, as_of, schema) if as_of else StoreSource(store, schema)
    radius = blast_radius(source, {c: mode for c in causes})
    services = radius.services()
    end = datetime.now(UTC) if as_of is None else datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    since = iso(end - timedelta(days=recent_days))
    near: set[str] = set(radius.affected)
    for c in causes:
        near |= set(dependencies(store, schema, c, RECENT_DEPTH))
    until = iso(end)
    changes = store.recent_events(near, since=since, until=until, limit=RECENT_LIMIT)  # newest first
    records = records_on(store, near, affects=source.affects if isinstance(source, MemoryIndex) else None)
    related = [r for r in records if r.cls == "Incident" and r.state == "open"]
    change_records = [r for r in records if r.cls == "Change" and overlaps(since, until, r.start, r.end)]
    in_maintenance = {
        ci: r.key for r in change_records if r.state in ("approved", "in_progress") and covers(r.start, r.end, until)
        for ci in r.ci_ids if ci in radius.states
    }
    stakeholders, stakeholders_total = first_stakeholders(store, radius, max_stakeholders, max_reasons)
    return IncidentReport(causes, mode, as_of, radius, services, stakeholders,
                          matrix.priority(services, urgency), changes, related,
                          change_records, in_maintenance, stakeholders_total)


def report_dict(rep: IncidentReport, max_affected: int | None = None) -> dict[str, Any]:
    """The JSON form of an incident analysis; ``max_affected`` keeps the worst affected CIs only."""
    affected = rep.radius.worst_affected(max_affected)
    info = rep.radius.labels([*(i for i, _s in affected), *rep.in_maintenance, *rep.causes])
    return {
        "causes": [{"id": c, "name": info[c][0]} for c in rep.causes],
        "mode": rep.mode.label,
        "as_of": rep.as_of,
        "priority": {"priority": rep.priority.priority, "impact": rep.priority.impact,
                     "urgency": rep.priority.urgency, "reason": rep.priority.reason},
        "services": [{"id": s.id, "name": s.name, "tier": s.tier, "state": s.state.label, "path": list(s.path),
                      "path_ids": list(s.path_ids)} for s in rep.services],
        "affected": [{"id": i, "name": info[i][0], "class": info[i][1], "state": s.label} for i, s in affected],
        "stakeholders": [
            {"id": sh.id, "name": sh.name, "kind": sh.kind, "roles": sh.roles, "worst_tier": sh.worst_tier,
             "contact": sh.contact,
             "reasons": [{"role": r.role, "ci_id": r.ci_id, "ci": r.ci_name, "state": r.state.label, "tier": r.tier}
                         for r in sh.reasons]}
            for sh in rep.stakeholders
        ],
        "related_incidents": [_record_dict(r) for r in rep.related_incidents],
        "change_records": [_record_dict(r) for r in rep.change_records],
        "in_maintenance": [{"id": i, "name": info[i][0], "change": k}
                           for i, k in sorted(rep.in_maintenance.items())],
        "recent_changes": [{"at": e.at, "kind": e.kind, "ci_id": e.ci_id, "peer_id": e.peer_id, "attr": e.attr,
                            "old": e.old, "new": e.new, "source": e.source, "actor": e.actor}
                           for e in rep.recent_changes],
    }


def _record_dict(r: Record) -> dict[str, Any]:
    return {"id": r.id, "class": r.cls, "key": r.key, "state": r.state, "start": r.start, "end": r.end,
            "type": r.change_type, "ci_ids": list(r.ci_ids)}
