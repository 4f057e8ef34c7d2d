"""A relationship's provenance as people read it: per attribute, the current value and the source it
comes from, and every source's value with when that source last saw the relationship and whether its
value is the one in force.

Relationship attributes are reconciled as CI attributes are (``cmdb.planning.rel_attrs``); this is the
read side, shared by ``cmdb rel show`` and ``GET /api/v1/relationships/{id}/provenance`` so both
say the same. A relationship stored before provenance existed has attributes without sources: they
are shown with source ``None``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.errors import NotFoundError
from cmdb.reconcile import ReconcileConfig, freshness_horizon, resolve
from cmdb.store.base import AttrValue, GraphStore, RelState, Sighting, rel_id_for


@dataclass
class SourceValue:
    """One source's value of one attribute of a relationship."""

    source: str
    value: Any
    run_id: str
    set_at: str  # when the source set this value
    last_seen: str | None  # when the source last saw the relationship (any scope); None: never recorded
    current: bool  # this source's value is the one in force


@dataclass
class AttrProvenance:
    value: Any  # the current value (None: not set)
    source: str | None  # the source it comes from (None: unknown, a relationship older than provenance)
    sources: list[SourceValue] = field(default_factory=list)


@dataclass
class RelProvenance:
    id: str
    type: str
    src: str
    dst: str
    status: str
    attributes: dict[str, AttrProvenance]
    sightings: list[Sighting]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``from``/``to`` as relationship listings name the ends)."""
        return {"id": self.id, "type": self.type, "from": self.src, "to": self.dst, "status": self.status,
                "attributes": {a: asdict(p) for a, p in self.attributes.items()},
                "sightings": [asdict(s) for s in self.sightings]}


def last_seen_by(sightings: dict[tuple[str, str], Sighting]) -> dict[str, str]:
    """Per source, the latest ``last_seen`` over its scopes."""
    out: dict[str, str] = {}
    for s in sightings.values():
        if s.last_seen > out.get(s.source, ""):
            out[s.source] = s.last_seen
    return out


def winner_of(rel: RelState, attr: str, value: Any, candidates: dict[str, AttrValue], config: ReconcileConfig,
              now: datetime) -> str | None:
    """The source the current ``value`` comes from: of the sources that hold it, the one reconciliation
    would pick (fresh before stale, then precedence, then the newer value)."""
    holding = {s: v for s, v in candidates.items() if v.value == value}
    if not holding:
        return None
    win = resolve(holding, (rel.type,), attr, rel.sightings, freshness_horizon(now, config), config)
    return win.source if win is not None else None


def rel_provenance(rel: RelState, config: ReconcileConfig | None = None,
                   now: datetime | None = None) -> RelProvenance:
    """The provenance view of one relationship read whole (``GraphStore.get_rels``)."""
    config = config or ReconcileConfig()
    now = now or datetime.now(UTC)
    prov = rel.provenance or {}
    seen = last_seen_by(rel.sightings)
    attributes: dict[str, AttrProvenance] = {}
    for attr in sorted(set(rel.attrs) | set(prov)):
        value = rel.attrs.get(attr)
        candidates = prov.get(attr, {})
        source = winner_of(rel, attr, value, candidates, config, now) if attr in rel.attrs else None
        values = [SourceValue(s, v.value, v.run_id, v.set_at, seen.get(s), attr in rel.attrs and v.value == value)
                  for s, v in sorted(candidates.items(), key=lambda sv: (config.rank(sv[0], (rel.type,), attr), sv[0]))]
        attributes[attr] = AttrProvenance(value, source, values)
    sightings = sorted(rel.sightings.values(), key=lambda s: (s.source, s.scope))
    return RelProvenance(rel.id, rel.type, rel.src, rel.dst, rel.status, attributes, sightings)


def find_rel(store: GraphStore, rel_id: str) -> RelState:
    """One relationship whole, by id; NotFoundError naming how to find one."""
    found = store.get_rels([rel_id]).get(rel_id)
    if found is None:
        raise NotFoundError(f"no relationship {rel_id!r}; `cmdb rel list --ci CI` shows the ids")
    return found


def find_rel_between(store: GraphStore, rtype: str, src: str, dst: str) -> RelState:
    """The relationship ``src -rtype-> dst`` (CI ids), whole; NotFoundError when there is none."""
    found = store.get_rels([rel_id_for(rtype, src, dst)]).get(rel_id_for(rtype, src, dst))
    if found is None:
        raise NotFoundError(f"no {rtype} relationship from {src} to {dst}; `cmdb rel list --ci {src}` shows its"
                            " relationships")
    return found
