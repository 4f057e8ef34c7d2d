"""CI planning: each merged item matched against the store, then created, reconciled or recorded as
an identity conflict."""

from __future__ import annotations

from typing import Any

from cmdb.errors import CmdbError
from cmdb.identity import ItemGroup
from cmdb.planning.ageing import Ageing
from cmdb.planning.claims import ClaimPlanning
from cmdb.planning.state import CLASS_ATTR, IngestResult, derive_status, new_ci_id
from cmdb.reconcile import is_fresh, resolve
from cmdb.store.base import (
    AttrValue,
    ChangeSet,
    CIState,
    Sighting,
    SightingWrite,
)


class CIPlanning(Ageing, ClaimPlanning):
    def create_ci(self, cs: ChangeSet, group: ItemGroup, result: IngestResult) -> str:
        schema = self.schema
        attrs = schema.with_defaults(group.cls, group.attrs)
        try:
            schema.check_required(group.cls, attrs)
        except CmdbError as exc:
            raise self.fail(group.describe(), str(exc)) from None
        ci_id = new_ci_id()
        self.new_ids.add(ci_id)
        src, run = self.batch.source, self.batch.run_id
        sighting = self.sighting(None)
        state = CIState(
            id=ci_id, cls=group.cls, name=schema.display_name(group.cls, attrs), status="active",
            attrs=attrs, created_at=self.at, updated_at=self.at,
            provenance={a: {src: AttrValue(src, v, run, self.at)} for a, v in attrs.items()},
            sightings={(src, self.scope): sighting},
        )
        state.provenance[CLASS_ATTR] = {src: AttrValue(src, group.cls, run, self.at)}
        cs.cis_new.append(state)
        cs.sightings.append(SightingWrite("ci", ci_id, sighting))
        self.event(cs, "ci.created", ci_id=ci_id, new={"class": group.cls, "attrs": attrs})
        result.created += 1
        return ci_id

    def update_ci(self, cs: ChangeSet, state: CIState, group: ItemGroup, result: IngestResult) -> CIState:
        src, run, at = self.batch.source, self.batch.run_id, self.at
        prov = {a: dict(v) for a, v in state.provenance.items()}
        prov_changed = False
        for attr, value in [(CLASS_ATTR, group.cls), *group.attrs.items()]:
            mine = prov.setdefault(attr, {}).get(src)
            if mine is None or mine.value != value:
                prov[attr][src] = AttrValue(src, value, run, at)
                prov_changed = True
        prov_changed |= self.drop_source_values(state.id, prov, group, cs)  # cmdb.planning.ageing
        key = (src, self.scope)
        sightings = dict(state.sightings)
        sightings[key] = self.sighting(sightings.get(key))
        cs.sightings.append(SightingWrite("ci", state.id, sightings[key]))

        new_cls = self.family_checked(cs, state, self.resolve_class(state, prov, sightings), group, prov, sightings)
        ci_class = self.schema.ci_class(new_cls)
        ancestors, defined = ci_class.ancestors, ci_class.attributes
        attrs: dict[str, Any] = {}
        winners: dict[str, str] = {}
        for attr, candidates in prov.items():
            if attr == CLASS_ATTR or attr not in defined:  # another class's values stay in provenance only
                continue
            win = resolve(candidates, ancestors, attr, sightings, self.horizon, self.config)
            if win is not None:
                attrs[attr] = win.value
                winners[attr] = win.source
        self.note_unreported_keys(state, prov, new_cls, attrs, group)
        status = derive_status(sightings.values())
        changed = False
        if new_cls != state.cls:
            self.event(cs, "ci.class", ci_id=state.id, attr="class", old=state.cls, new=new_cls)
            changed = True
        for attr in sorted(set(attrs) | set(state.attrs)):
            old, new = state.attrs.get(attr), attrs.get(attr)
            if old != new:
                self.event(cs, "ci.attr", ci_id=state.id, attr=attr, old=old, new=new)
                cs.events[-1].source = winners.get(attr, src)
                changed = True
        if status != state.status:
            self.event(cs, "ci.status", ci_id=state.id, attr="status", old=state.status, new=status)
            changed = True
        if not changed:
            result.unchanged += 1
            same = CIState(state.id, state.cls, state.name, state.status, state.attrs, state.created_at,
                           state.updated_at, prov, sightings)
            if prov_changed:  # a new alternative value: provenance is written, nothing resolved changed
                cs.cis_changed.append(same)
            return same
        updated = CIState(
            id=state.id, cls=new_cls, name=self.schema.display_name(new_cls, attrs), status=status,
            attrs=attrs, created_at=state.created_at, updated_at=at, provenance=prov, sightings=sightings,
        )
        cs.cis_changed.append(updated)
        result.updated += 1
        return updated

    def resolve_class(self, state: CIState, prov: dict[str, dict[str, AttrValue]],
                       sightings: dict[tuple[str, str], Sighting]) -> str:
        claims = prov.get(CLASS_ATTR) or {}
        win = resolve(claims, (), CLASS_ATTR, sightings, self.horizon, self.config)
        if win is None:
            return state.cls
        best = str(win.value)
        # A fresh claim that refines the winner (Server under Host) makes the class more specific.
        for source, claim in claims.items():
            cls = str(claim.value)
            if cls in self.schema.classes and self.schema.is_a(cls, best) and is_fresh(source, sightings, self.horizon):
                best = cls
        return best if best in self.schema.classes else state.cls
