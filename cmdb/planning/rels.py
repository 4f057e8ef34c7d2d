"""Relationship planning: ends resolved to CIs, classes checked against the type, relationships
created or reconciled (attributes per source: ``cmdb.planning.rel_attrs``)."""

from __future__ import annotations

from typing import Any

from cmdb.batch import Ref
from cmdb.planning.rel_attrs import RelAttrPlanning
from cmdb.planning.state import IngestResult, PreparedRel, derive_status
from cmdb.store.base import (
    BatchReader,
    ChangeSet,
    CIState,
    Event,
    RelState,
    SightingWrite,
    rel_id_for,
)


class RelPlanning(RelAttrPlanning):
    moved_rels: dict[tuple[str, str, str], RelState]  # set by ``merging.MergePlanning.reset_merges``

    def endpoint(self, rel: PreparedRel, side: str, key_map: dict[str, str],
                  group_ci: list[str | None]) -> str | None:
        end: Ref = rel.rec.src if side == "src" else rel.rec.dst
        if isinstance(end, str):
            return group_ci[self.ref_group[end]]
        keys = rel.src_keys if side == "src" else rel.dst_keys
        assert keys is not None
        found = sorted({key_map[k] for k in keys if k in key_map})
        if len(found) == 1:
            return found[0]
        if not found:
            raise self.fail(
                rel.rec.describe(),
                f"{end.describe()} matches no CI; load it first or include it in this batch",
            )
        if len(found) > 1:
            raise self.fail(rel.rec.describe(), f"{end.describe()} matches several CIs: {', '.join(found)}")
        return found[0]

    def plan_rels(self, reader: BatchReader, cs: ChangeSet, key_map: dict[str, str],
                   states: dict[str, CIState], group_ci: list[str | None], group_cls: dict[str, str],
                   result: IngestResult) -> set[str]:
        wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        allowed_ok: dict[tuple[str, str, str], bool] = {}  # (type, side, class) -> may that class be there
        schema = self.schema
        for rel in self.rels:
            src = self.endpoint(rel, "src", key_map, group_ci)
            dst = self.endpoint(rel, "dst", key_map, group_ci)
            if src is None or dst is None:
                continue  # an end is an identity conflict: recorded there, nothing to link
            rtype = schema.rel_type(rel.rec.type)
            for cid, label in ((src, "from"), (dst, "to")):
                cls = group_cls.get(cid) or (states[cid].cls if cid in states else None)
                if cls is None:
                    extra = reader.load_cis([cid])
                    states.update(extra)
                    cls = states[cid].cls
                    group_cls[cid] = cls
                ok = allowed_ok.get((rtype.name, label, cls))
                if ok is None:
                    allowed = rtype.from_classes if label == "from" else rtype.to_classes
                    ok = allowed_ok[(rtype.name, label, cls)] = (
                        not allowed or any(schema.is_a(cls, a) for a in allowed))
                if not ok:
                    allowed = rtype.from_classes if label == "from" else rtype.to_classes
                    raise self.fail(
                        rel.rec.describe(), f"{label} end is a {cls}; {rtype.name} expects {' or '.join(allowed)}"
                    )
            triple = (rtype.name, src, dst)
            prior = wanted.get(triple)
            wanted[triple] = {**prior, **rel.attrs} if prior else rel.attrs
        # A relationship with an end created by this batch cannot exist yet: no need to look for it.
        new = self.new_ids
        known = [t for t in wanted if t[1] not in new and t[2] not in new]
        existing = reader.load_rels(known) if known else {}
        if self.moved_rels:  # re-created on a kept CI by a merge of this plan (cmdb.planning.merging)
            existing = {**existing, **self.moved_rels}
        seen: set[str] = set()
        # One sighting object for every relationship this batch creates (records are never mutated).
        fresh = self.sighting(None)
        fresh_key = (fresh.source, fresh.scope)
        at, source, run_id, actor = self.at, self.batch.source, self.batch.run_id, self.batch.actor
        for triple, attrs in wanted.items():
            old = existing.get(triple) if existing else None
            if old is None:
                tname, src, dst = triple
                rel_id = rel_id_for(tname, src, dst)
                attrs, prov = self.new_rel_attrs(attrs)  # cmdb.planning.rel_attrs
                cs.rels_new.append(RelState(rel_id, tname, src, dst, attrs, "active", at, at, {fresh_key: fresh},
                                            prov))
                cs.sightings.append(SightingWrite("rel", rel_id, fresh))
                cs.events.append(Event(at, "rel.created", source, run_id, src, rel_id, dst, tname, None, attrs, actor))
                result.rels_created += 1
                seen.add(rel_id)
                continue
            seen.add(old.id)
            key = (self.batch.source, self.scope)
            sightings = dict(old.sightings)
            sightings[key] = self.sighting(sightings.get(key))
            cs.sightings.append(SightingWrite("rel", old.id, sightings[key]))
            merged, prov = self.reconcile_rel_attrs(old, attrs, sightings, cs)  # cmdb.planning.rel_attrs
            status = derive_status(sightings.values())
            changed = prov is not None
            for attr in sorted(set(merged) | set(old.attrs)):
                if merged.get(attr) != old.attrs.get(attr):
                    self.event(cs, "rel.attr", rel_id=old.id, ci_id=old.src, peer_id=old.dst, attr=attr,
                                old=old.attrs.get(attr), new=merged.get(attr))
                    changed = True
            if status != old.status:
                self.event(cs, "rel.status", rel_id=old.id, ci_id=old.src, peer_id=old.dst, attr="status",
                            old=old.status, new=status)
                changed = True
            if changed:
                cs.rels_changed.append(RelState(old.id, old.type, old.src, old.dst, merged, status,
                                                old.created_at, self.at, {}, prov))
                result.rels_updated += 1
        return seen
