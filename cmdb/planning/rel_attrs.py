"""Relationship attributes with per-source provenance, reconciled as CI attributes are.

Each source's value of each relationship attribute is kept (``RelState.provenance``); the current
value is the one ``cmdb.reconcile.resolve`` picks: fresh sources before stale ones, then source
precedence (per relationship type and attribute, ``Type.attr`` overrides), then the newer value. A
weaker source may so update its own value while a stronger one keeps the current value, and the
weaker one's value takes over when the stronger stops seeing the relationship. ``null`` for an
attribute drops the source's value; a complete run that no longer reports an attribute drops the
source's value if the run's scope covers the run that set it (``cmdb.planning.ageing``).

A relationship written before provenance existed has attributes but no provenance: its values are
taken as the strongest source's that sees it, as the old rule (a stronger source's value stays)
would have had them.
"""

from __future__ import annotations

from typing import Any

from cmdb.planning.ageing import Ageing
from cmdb.reconcile import resolve
from cmdb.store.base import AttrValue, ChangeSet, RelState, Sighting

Provenance = dict[str, dict[str, AttrValue]]


class RelAttrPlanning(Ageing):
    def new_rel_attrs(self, attrs: dict[str, Any]) -> tuple[dict[str, Any], Provenance | None]:
        """A new relationship's attributes (nulls left out) and provenance."""
        if not attrs:
            return attrs, None
        if any(v is None for v in attrs.values()):
            attrs = {k: v for k, v in attrs.items() if v is not None}
        src, run_id, at = self.batch.source, self.batch.run_id, self.at
        return attrs, {a: {src: AttrValue(src, v, run_id, at)} for a, v in attrs.items()}

    def legacy_provenance(self, old: RelState) -> Provenance:
        """Provenance for a relationship stored without one: its values are its strongest source's."""
        sources = sorted({s.source for s in old.sightings.values()},
                         key=lambda s: min(self.config.rank(s, (old.type,), a) for a in old.attrs))
        owner = sources[0] if sources else self.batch.source
        return {a: {owner: AttrValue(owner, v, "", old.updated_at)} for a, v in old.attrs.items()}

    def reconcile_rel_attrs(self, old: RelState, attrs: dict[str, Any], sightings: dict[tuple[str, str], Sighting],
                            cs: ChangeSet) -> tuple[dict[str, Any], Provenance | None]:
        """(current attributes, provenance to write or None when it did not change)."""
        base = old.provenance or (self.legacy_provenance(old) if old.attrs else {})
        if not attrs and not base:
            return old.attrs, None  # most relationships: no attributes at all
        src, run_id, at = self.batch.source, self.batch.run_id, self.at
        prov = {a: dict(v) for a, v in base.items()}
        changed = not old.provenance and bool(base)
        dropped: list[tuple[str, Any]] = []
        for attr, value in attrs.items():
            mine = prov.get(attr, {}).get(src)
            if value is None:
                if mine is not None:
                    dropped.append((attr, mine.value))
                    del prov[attr][src]
                continue
            if mine is None or mine.value != value:
                prov.setdefault(attr, {})[src] = AttrValue(src, value, run_id, at)
                changed = True
        if self.ages:
            candidates = [(a, v) for a, srcs in prov.items()
                          if a not in attrs and (v := srcs.get(src)) is not None and v.run_id != run_id]
            if candidates:
                covered = self.covers_run(v.run_id for _, v in candidates)
                for attr, v in candidates:
                    if covered[v.run_id]:
                        dropped.append((attr, v.value))
                        del prov[attr][src]
        for attr, value in sorted(dropped, key=lambda d: d[0]):
            self.event(cs, "rel.attr.dropped", rel_id=old.id, ci_id=old.src, peer_id=old.dst, attr=attr, old=value)
        if dropped:
            prov = {a: srcs for a, srcs in prov.items() if srcs}
            changed = True
        current: dict[str, Any] = {}
        for attr, candidates_of in prov.items():
            win = resolve(candidates_of, (old.type,), attr, sightings, self.horizon, self.config)
            if win is not None:
                current[attr] = win.value
        return current, (prov if changed else None)
