"""Matching that does not depend on order: a CI's identity keys come from its reconciled attributes
(every source's), and CIs proven to be one box are merged inside the batch that proves it.

``match_group`` places one merged batch item: it matches the item's keys, merges the CIs they point
at when their identity values agree (``claims.contradicting_attrs``) or records a conflict when they
do not, updates or creates the CI, then registers the keys of the CI's *reconciled* attributes. A
reconciled key another CI already holds is the same proof: merge, or conflict. ``fold`` is the merge
itself (also used by ``cmdb.merge`` for a merge asked by hand): provenance and sightings combined,
class and attributes resolved again, the duplicate's relationships re-created on the kept CI, a
``ci.merged`` history event with the evidence, and a ``CIMerge`` for the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmdb.identity import ItemGroup, identity_keys
from cmdb.planning.claims import ClaimPlanning, conflict_id, contradicting_attrs, cross_family, family, specific
from cmdb.planning.state import CLASS_ATTR, IngestResult, derive_status
from cmdb.reconcile import resolve
from cmdb.store.base import (
    STATUS_RANK,
    AttrValue,
    BatchReader,
    ChangeSet,
    CIState,
    Conflict,
    RelState,
    Sighting,
    SightingWrite,
    rel_id_for,
)
from cmdb.store.merges import CIMerge


def combine_provenance(a: dict[str, dict[str, AttrValue]],
                       b: dict[str, dict[str, AttrValue]]) -> dict[str, dict[str, AttrValue]]:
    """Every source's value of every attribute; where both CIs have one from a source, the newer."""
    out = {attr: dict(srcs) for attr, srcs in a.items()}
    for attr, srcs in b.items():
        mine = out.setdefault(attr, {})
        for source, value in srcs.items():
            if source not in mine or value.set_at > mine[source].set_at:
                mine[source] = value
    return out


def combine_sightings(a: dict[tuple[str, str], Sighting],
                      b: dict[tuple[str, str], Sighting]) -> dict[tuple[str, str], Sighting]:
    out = dict(a)
    for key, s in b.items():
        o = out.get(key)
        if o is None:
            out[key] = s
            continue
        newer = s if s.last_seen > o.last_seen else o
        status = min(s.status, o.status, key=lambda x: STATUS_RANK[x])
        out[key] = Sighting(s.source, s.scope, min(s.first_seen, o.first_seen), newer.last_seen, newer.last_run,
                            min(s.missed, o.missed), status)
    return out


def older_first(a: CIState, b: CIState) -> tuple[CIState, CIState]:
    """(kept, duplicate): the CI created first is kept, so its id (the one people saw first) stays."""
    return (a, b) if (a.created_at, a.id) <= (b.created_at, b.id) else (b, a)


class MergePlanning(ClaimPlanning):
    if TYPE_CHECKING:  # parts of the planner (cmdb.planning.cis)
        def resolve_class(self, state: CIState, prov: dict[str, dict[str, AttrValue]],
                          sightings: dict[tuple[str, str], Sighting]) -> str: ...
        def create_ci(self, cs: ChangeSet, group: ItemGroup, result: IngestResult) -> str: ...
        def update_ci(self, cs: ChangeSet, state: CIState, group: ItemGroup, result: IngestResult) -> CIState: ...

    def reset_merges(self) -> None:
        """Called at the start of each ``plan`` (a store may plan a batch again when it retries)."""
        self.merged_into: dict[str, str] = {}
        self.moved_rels: dict[tuple[str, str, str], RelState] = {}
        self.looked_up: set[str] = set()
        # CI id -> (the attributes, class, identity keys) computed for them: a CI an item did not change
        # keeps the very attribute dict, so its keys are not computed twice.
        self.known_keys: dict[str, tuple[dict[str, Any], str, dict[str, str]]] = {}
        self.key_attr_cache: dict[str, frozenset[str]] = getattr(self, "key_attr_cache", {})

    def seen_by_source_alone(self, state: CIState) -> bool:
        """Seen by this batch's source alone: its reconciled attributes are that source's latest item's,
        whose keys were registered with that item, so there is nothing new to register or look up."""
        source = self.batch.source
        return all(s == source for s, _ in state.sightings)

    def key_attrs(self, cls: str) -> frozenset[str]:
        """Attributes of ``cls`` that take part in an identity key."""
        found = self.key_attr_cache.get(cls)
        if found is None:
            found = self.key_attr_cache[cls] = frozenset(a for k in self.schema.ci_class(cls).identity for a in k)
        return found

    def live(self, ci_id: str) -> str:
        """The CI ``ci_id`` is after this plan's merges."""
        while ci_id in self.merged_into:
            ci_id = self.merged_into[ci_id]
        return ci_id

    def prefetch_reconciled(self, reader: BatchReader, key_map: dict[str, str], states: dict[str, CIState]) -> None:
        """One look-up, before the items are placed, of the keys the matched CIs' reconciled attributes
        will have (old values, or the item's), so ``register_reconciled`` rarely asks the store again."""
        wanted: set[str] = set()
        for group in self.groups:
            ids = {key_map[k] for k in group.keys if k in key_map}
            state = states.get(next(iter(ids))) if len(ids) == 1 else None
            if state is None or self.seen_by_source_alone(state):
                continue
            keys = identity_keys(self.schema, state.cls, state.attrs)
            self.known_keys[state.id] = (state.attrs, state.cls, keys)
            wanted.update(keys)
            attrs = state.attrs
            if any(attrs.get(a) != v for a, v in group.attrs.items() if a in self.key_attrs(state.cls)):
                wanted.update(identity_keys(self.schema, state.cls, {**attrs, **group.attrs}))
        wanted.difference_update(key_map)
        if wanted:
            self.looked_up.update(wanted)
            for k, (ci_id, _cls) in reader.resolve_keys(wanted).items():
                if (k, ci_id) not in self.released:  # a key this batch moved away is not that CI's any more
                    key_map[k] = ci_id

    # -- placing one item -------------------------------------------------------------------------
    def match_group(self, reader: BatchReader, cs: ChangeSet, group: ItemGroup, key_map: dict[str, str],
                    states: dict[str, CIState], result: IngestResult) -> str | None:
        """The CI ``group`` describes (None: a conflict was recorded and nothing of it written). An item
        whose placement merged CIs counts as an update even when it brought no new value: the CI changed."""
        merges, unchanged = len(cs.merges), result.unchanged
        matched = sorted({self.live(key_map[k]) for k in group.keys if k in key_map})
        for cid in matched:
            if cid not in states:
                states.update(reader.load_cis([cid]))
        if len(matched) > 1 and self.merge_all(reader, cs, group, matched, key_map, states) is None:
            return None
        if matched:
            ci_id = self.live(matched[0])
            state = states[ci_id]
            shared = {group.keys[k] for k in group.keys if key_map.get(k) is not None
                      and self.live(key_map[k]) == ci_id}
            bad = contradicting_attrs(self.schema, state.cls, group.attrs, state.attrs, shared)
            if bad:  # recorded, and written: both values stay in provenance, precedence picks one
                self.record(cs, group, [ci_id], group.keys, key_map, bad, reader)
            states[ci_id] = self.update_ci(cs, state, group, result)
        else:
            ci_id = self.create_ci(cs, group, result)
            states[ci_id] = cs.cis_new[-1]
        for key in group.keys:
            if key not in key_map:
                key_map[key] = ci_id
                cs.keys.append((key, ci_id))
        found = self.register_reconciled(reader, cs, group, ci_id, key_map, states, result)
        if len(cs.merges) > merges and result.unchanged > unchanged:
            result.unchanged -= 1
            result.updated += 1
        return found

    def merge_all(self, reader: BatchReader, cs: ChangeSet, group: ItemGroup, matched: list[str],
                  key_map: dict[str, str], states: dict[str, CIState]) -> str | None:
        """Fold the CIs one item matches into the oldest, unless identity values disagree (conflict)."""
        cis = [states[c] for c in matched]
        bad: list[str] = []
        for i, a in enumerate(cis):
            # The item is each CI (through the keys it shares with it) ...
            mine = {group.keys[k] for k in group.keys if k in key_map and self.live(key_map[k]) == a.id}
            bad += contradicting_attrs(self.schema, a.cls, group.attrs, a.attrs, mine)
            for b in cis[i + 1:]:
                # ... and the CIs, which share no key, must not disagree on any single-value one.
                bad += contradicting_attrs(self.schema, a.cls, a.attrs, b.attrs, ())
                if cross_family(self.schema, a.cls, b.cls):
                    bad.append("class")
        if bad:
            self.record(cs, group, matched, group.keys, key_map, sorted(set(bad)), reader)
            return None
        if self.separated(reader, matched):
            return None
        keep = min(cis, key=lambda c: (c.created_at, c.id))
        evidence = {k: key_map[k] for k in sorted(group.keys) if k in key_map}
        for dup in cis:
            if dup.id != keep.id:
                keep = self.fold(reader, cs, keep, dup, {"item": group.describe(), "keys": evidence})
                states[keep.id] = keep
                states.pop(dup.id, None)
        return keep.id

    def register_reconciled(self, reader: BatchReader, cs: ChangeSet, group: ItemGroup, ci_id: str,
                            key_map: dict[str, str], states: dict[str, CIState], result: IngestResult) -> str:
        """Register the keys of the CI's reconciled attributes; one held by another CI proves they are
        one (merge) or contradict (conflict). Returns the CI the item ended up in."""
        for _ in range(8):  # each round can only merge; a handful is plenty
            state = states[ci_id]
            if self.seen_by_source_alone(state):
                return ci_id
            known = self.known_keys.get(ci_id)
            if known is not None and known[0] is state.attrs and known[1] == state.cls:
                keys = known[2]
            else:
                keys = identity_keys(self.schema, state.cls, state.attrs)
            unknown = [k for k in keys if k not in key_map and k not in self.looked_up]
            if unknown:
                self.looked_up.update(unknown)
                for k, (other, _cls) in reader.resolve_keys(unknown).items():
                    if (k, other) not in self.released:
                        key_map[k] = other
            others = sorted({self.live(key_map[k]) for k in keys if k in key_map} - {ci_id})
            for k in keys:
                if k not in key_map:
                    key_map[k] = ci_id
                    cs.keys.append((k, ci_id))
            if not others:
                return ci_id
            other = others[0]
            if other not in states:
                states.update(reader.load_cis([other]))
            shared = {keys[k] for k in keys if k in key_map and self.live(key_map[k]) == other}
            bad = contradicting_attrs(self.schema, state.cls, state.attrs, states[other].attrs, shared)
            if cross_family(self.schema, state.cls, states[other].cls):
                bad.append("class")
            if bad or self.separated(reader, [ci_id, other]):
                if bad:
                    tying = {k: n for k, n in keys.items() if k in key_map and self.live(key_map[k]) == other}
                    self.record(cs, group, [ci_id, other], tying, key_map, bad, reader)
                return ci_id
            keep, dup = older_first(state, states[other])
            if dup.id in self.new_ids:  # created by this batch a moment ago: it was an update after all
                result.created -= 1
                result.updated += 1
            evidence = {k: other for k in sorted(keys) if k in key_map and self.live(key_map[k]) == other}
            kept = self.fold(reader, cs, keep, dup, {"item": group.describe(), "keys": evidence,
                                                      "reconciled": True})
            states[kept.id] = kept
            states.pop(dup.id, None)
            ci_id = kept.id
        return ci_id

    def separated(self, reader: BatchReader, ids: list[str]) -> bool:
        """Were these CIs declared separate (``cmdb conflicts resolve --keep-separate``)? For one CI:
        was a conflict about it (a contradicting value, a class claim) settled so?"""
        wanted = set(ids)
        need = min(2, len(wanted))
        return any(len(wanted & set(kept)) >= need for kept in reader.kept_separate(wanted))

    def drop_settled(self, reader: BatchReader, cs: ChangeSet) -> None:
        if cs.conflicts:
            cs.conflicts = [c for c in cs.conflicts if not self.separated(reader, c.ci_ids)]

    def record(self, cs: ChangeSet, group: ItemGroup, ci_ids: list[str], keys: dict[str, str],
               key_map: dict[str, str], bad: list[str], reader: BatchReader) -> None:
        """An identity conflict naming the CIs, the keys that tie them and the values that disagree;
        not raised again once the CIs were declared separate."""
        named = {k: self.live(key_map[k]) for k in sorted(keys) if k in key_map}
        cs.conflicts.append(Conflict(
            id=conflict_id(self.batch.source, group.cls, *sorted(named), *ci_ids), at=self.at,
            source=self.batch.source, run_id=self.batch.run_id,
            item=f"{group.describe()}: {', '.join(bad)} disagree{'s' if len(bad) == 1 else ''}"
                 + ("; written, every value kept in provenance" if len(ci_ids) == 1 else "; not written"),
            item_class=group.cls, keys=named, ci_ids=list(ci_ids), attrs=group.attrs,
        ))

    # -- the merge ----------------------------------------------------------------------------------
    def fold(self, reader: BatchReader, cs: ChangeSet, keep: CIState, dup: CIState, evidence: dict[str, Any],
             resolves: str | None = None) -> CIState:
        """``dup`` merged into ``keep`` within this plan; returns the kept CI's new state."""
        prov = combine_provenance(keep.provenance, dup.provenance)
        sightings = combine_sightings(keep.sightings, dup.sightings)
        cls = self.resolve_class(keep, prov, sightings)
        if cross_family(self.schema, keep.cls, cls):
            cls = keep.cls
        elif not specific(self.schema, cls):  # a generic claim never takes a box out of a specific family
            cls = next((c for c in (keep.cls, dup.cls) if specific(self.schema, c)
                        and family(self.schema, c) != family(self.schema, cls)), cls)
        ci_class = self.schema.ci_class(cls)
        attrs: dict[str, Any] = {}
        for attr, candidates in prov.items():
            if attr == CLASS_ATTR or attr not in ci_class.attributes:
                continue
            win = resolve(candidates, ci_class.ancestors, attr, sightings, self.horizon, self.config)
            if win is not None:
                attrs[attr] = win.value
        status = derive_status(sightings.values())
        self.event(cs, "ci.merged", ci_id=keep.id, peer_id=dup.id, attr="merged",
                   old={"id": dup.id, "class": dup.cls, "name": dup.name},
                   new={"kept": keep.id, **evidence})
        if cls != keep.cls:
            self.event(cs, "ci.class", ci_id=keep.id, attr="class", old=keep.cls, new=cls)
        for attr in sorted(set(attrs) | set(keep.attrs)):
            if attrs.get(attr) != keep.attrs.get(attr):
                self.event(cs, "ci.attr", ci_id=keep.id, attr=attr, old=keep.attrs.get(attr), new=attrs.get(attr))
        if status != keep.status:
            self.event(cs, "ci.status", ci_id=keep.id, attr="status", old=keep.status, new=status)
        merged = CIState(keep.id, cls, self.schema.display_name(cls, attrs), status, attrs,
                         min(keep.created_at, dup.created_at), self.at, prov, sightings)
        cs.cis_changed.append(merged)
        for key, s in sightings.items():
            if keep.sightings.get(key) != s:
                cs.sightings.append(SightingWrite("ci", keep.id, s))
        self.move_rels(reader, cs, keep.id, dup.id)
        cs.merges.append(CIMerge(keep.id, dup.id, dup.name, resolves, self.at, self.batch.actor))
        self.merged_into[dup.id] = keep.id
        return merged

    def move_rels(self, reader: BatchReader, cs: ChangeSet, keep: str, dup: str) -> None:
        """The duplicate's relationships re-created on the kept CI (the store drops the old ones);
        one the kept CI already has takes the other's sightings and missing attributes."""
        moves: list[tuple[RelState, tuple[str, str, str]]] = []
        for r in reader.rels_touching([dup]):
            src = keep if r.src == dup else self.live(r.src)
            dst = keep if r.dst == dup else self.live(r.dst)
            if src == dst:  # the two were linked to each other: nothing left to link
                self.event(cs, "rel.merged", rel_id=r.id, ci_id=r.src, peer_id=r.dst, attr=r.type, old=r.status)
                continue
            moves.append((r, (r.type, src, dst)))
        existing = reader.load_rels([t for _, t in moves if t not in self.moved_rels]) if moves else {}
        for r, triple in moves:
            target = self.moved_rels.get(triple) or existing.get(triple)
            if target is None:
                new = RelState(rel_id_for(*triple), r.type, triple[1], triple[2], dict(r.attrs), r.status,
                               r.created_at, self.at, dict(r.sightings))
                cs.rels_new.append(new)
                cs.sightings.extend(SightingWrite("rel", new.id, s) for s in new.sightings.values())
                self.moved_rels[triple] = new
                self.event(cs, "rel.moved", rel_id=new.id, ci_id=new.src, peer_id=new.dst, attr=r.type, old=r.id)
                continue
            sightings = combine_sightings(target.sightings, r.sightings)
            cs.sightings.extend(SightingWrite("rel", target.id, s) for k, s in sightings.items()
                                if target.sightings.get(k) != s)
            target.sightings.update(sightings)
            attrs = {**r.attrs, **target.attrs}
            status = derive_status(sightings.values())
            if triple not in self.moved_rels:
                cs.rels_changed.append(RelState(target.id, target.type, target.src, target.dst, attrs, status,
                                                target.created_at, self.at))
            else:
                target.attrs, target.status = attrs, status
            self.event(cs, "rel.merged", rel_id=target.id, ci_id=target.src, peer_id=target.dst, attr=r.type,
                       old=r.id)
