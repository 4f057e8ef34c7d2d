"""Ageing: what a source stops saying stops counting (identity keys and attribute values).

A source's value of an attribute is dropped from a CI's provenance when the source says ``null``
for it, or when a *complete* run of the source sees the CI and no longer reports the attribute,
provided the run's scope covers the scope of the run that set the value (``scope_covers``): the
SSH collector's dependency-map batch (scope ``depmap:x``) does not report a host's OS, and must not
age what the host's own batch (scope ``x``) said. The best remaining source's value then becomes
current, or the attribute is cleared. Partial runs drop nothing; required attributes and those
with a schema default are kept.

An identity key belongs to a CI as long as some source's values (or the CI's reconciled values)
still yield it. A complete run that stops yielding a key it used to (a moved IP, a swapped NIC)
retires it, so a new box with that value becomes a new CI instead of a false conflict. Within one
complete batch, an item that matches a CI only through keys no other source ever gave, while
another item of the same batch (or a stronger key of the same item) places the box elsewhere,
takes those keys with it: the earlier CI keeps no claim on them. "Elsewhere" means through a key some
other source also gave, or through a stronger key (the class's identity keys are listed strongest
first: a serial outranks a management IP). A recorded conflict whose keys no longer point at two of
its CIs is closed (kept, with when, which run and which keys: ``cmdb.store.conflicts``). Each step is a
history event.

A CI that a source merely stops seeing keeps its keys: lifecycle makes it stale, then retired, and
the box seen again is the same CI back to life (``test_stale_then_retired_after_k_complete_runs``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cmdb.identity import ItemGroup, identity_keys, normalize_key_value
from cmdb.model import Schema
from cmdb.planning.state import CLASS_ATTR, DEFAULT_SCOPE, PlannerState
from cmdb.reconcile import MANUAL_SOURCES, resolve
from cmdb.scopes import scope_covers
from cmdb.store.base import AttrValue, BatchReader, ChangeSet, CIState

Provenance = dict[str, dict[str, AttrValue]]


def key_name(key: str) -> str:
    """``serial_number`` of ``device:serial_number=abc``."""
    return key.split(":", 1)[-1].split("=", 1)[0]


def source_keys(schema: Schema, cls: str, prov: Provenance, source: str) -> set[str]:
    """The identity keys ``source``'s own values yield, under the class it claims."""
    claim = prov.get(CLASS_ATTR, {}).get(source)
    if claim is not None and claim.value in schema.classes and not schema.ci_class(claim.value).abstract:
        cls = str(claim.value)
    attrs = {a: srcs[source].value for a, srcs in prov.items() if a != CLASS_ATTR and source in srcs}
    return set(identity_keys(schema, cls, attrs)) if attrs else set()


def explicit_nulls(group: ItemGroup) -> set[str]:
    """Attributes an item of the group set to ``null`` and no item of it gave a value."""
    out: set[str] = set()
    for rec in group.items:
        for attr, value in rec.attrs.items():
            if value is None:
                out.add(attr)
    return out - group.attrs.keys() if out else out


class Ageing(PlannerState):
    """Per-source retirement of attribute values and identity keys (see the module docstring)."""

    def start_ageing(self, reader: BatchReader) -> None:
        self.age_reader = reader
        self.run_covered: dict[str, bool] = {}
        self.keys_to_retire: dict[tuple[str, str], bool] = {}  # (key, CI id) -> known to be the CI's
        self.released = set()
        self.id_attrs: dict[str, frozenset[str]] = {}

    @property
    def ages(self) -> bool:
        return self.batch.complete and self.batch.source not in MANUAL_SOURCES

    def covers_run(self, run_ids: Iterable[str]) -> dict[str, bool]:
        """Whether this run's scope covers the scope of each earlier run (unknown runs: no)."""
        unknown = [r for r in set(run_ids) if r not in self.run_covered]
        if unknown:
            found = self.age_reader.run_scopes(unknown)
            for r in unknown:
                self.run_covered[r] = r in found and scope_covers(self.scope, found[r] or DEFAULT_SCOPE)
        return self.run_covered

    def identity_attrs(self, cls: str) -> frozenset[str]:
        out = self.id_attrs.get(cls)
        if out is None:
            ci_class = self.schema.ci_class(cls)
            out = self.id_attrs[cls] = frozenset(a for key in ci_class.identity for a in key)
        return out

    # -- attribute values ------------------------------------------------------------------------
    def drop_source_values(self, ci_id: str, prov: Provenance, group: ItemGroup, cs: ChangeSet) -> bool:
        """This source's explicit nulls and (complete runs) unreported attributes, out of ``prov``."""
        src, run_id = self.batch.source, self.batch.run_id
        nulls = explicit_nulls(group)
        drop = [a for a in sorted(nulls) if src in prov.get(a, {})]
        if self.ages:
            ci_class = self.schema.ci_class(group.cls)
            candidates = [
                (a, v) for a, srcs in prov.items()
                if a != CLASS_ATTR and a not in group.attrs and a not in nulls and a not in ci_class.defaults
                and a not in ci_class.required and (v := srcs.get(src)) is not None and v.run_id != run_id
            ]
            if candidates:
                covered = self.covers_run(v.run_id for _, v in candidates)
                drop += sorted(a for a, v in candidates if covered[v.run_id])
        for attr in drop:
            old = prov[attr].pop(src)
            if not prov[attr]:
                del prov[attr]
            self.event(cs, "ci.attr.dropped", ci_id=ci_id, attr=attr, old=old.value)
        return bool(drop)

    # -- identity keys ---------------------------------------------------------------------------
    def all_keys(self, cls: str, prov: Provenance, attrs: dict[str, Any], without: str | None = None) -> set[str]:
        """Keys some source's values, or the reconciled ``attrs``, still yield (``without`` one source)."""
        out = set(identity_keys(self.schema, cls, attrs))
        for source in {s for srcs in prov.values() for s in srcs}:
            if source != without:
                out |= source_keys(self.schema, cls, prov, source)
        return out

    def note_unreported_keys(self, old: CIState, prov: Provenance, cls: str, attrs: dict[str, Any],
                             group: ItemGroup) -> None:
        """After a complete run updated ``old``: keys its source's old values yielded and nothing yields now."""
        if not self.ages:
            return
        src = self.batch.source
        watched = self.identity_attrs(old.cls) | self.identity_attrs(cls)
        before = old.provenance
        if all(_value(before, a, src) == _value(prov, a, src) for a in watched):
            return
        gone = source_keys(self.schema, old.cls, before, src) - self.all_keys(cls, prov, attrs) - group.keys.keys()
        for key in gone:
            self.keys_to_retire.setdefault((key, old.id), False)

    def release_moved_keys(self, cs: ChangeSet, key_map: dict[str, str], states: dict[str, CIState]) -> None:
        """Before matching: an item's match through keys only this source ever gave a CI is dropped
        when the same batch places that box elsewhere (another item on the CI, or the item's other
        keys on another CI)."""
        if not self.ages or not key_map:
            return
        matches: list[dict[str, set[str]]] = []
        by_ci: dict[str, list[int]] = {}
        for gi, group in enumerate(self.groups):
            m: dict[str, set[str]] = {}
            for k in group.keys:
                c = key_map.get(k)
                if c is not None:
                    m.setdefault(c, set()).add(k)
            matches.append(m)
            for c in m:
                by_ci.setdefault(c, []).append(gi)
        contested = [(gi, c) for gi, m in enumerate(matches) for c in m if len(m) > 1 or len(by_ci[c]) > 1]
        if not contested:
            return
        weak = {(gi, c) for gi, c in contested if self.keys_only_from_source(states[c], matches[gi][c])}

        def strength(gi: int, c: str) -> int:  # of the strongest key matching: lower is stronger
            order = ["+".join(k) for k in self.schema.ci_class(states[c].cls).identity]
            return min(order.index(n) if n in order else len(order) for n in map(key_name, matches[gi][c]))

        dropped: set[tuple[int, str]] = set()
        for gi, c in sorted(weak):
            rivals = [(gi, c2) for c2 in matches[gi] if c2 != c] + [(gj, c) for gj in by_ci[c] if gj != gi]
            if any(r not in weak or strength(*r) < strength(gi, c) for r in rivals):
                dropped.add((gi, c))
        for gi, c in sorted(dropped):
            for k in sorted(matches[gi][c]):
                key_map.pop(k, None)
                self.keys_to_retire[(k, c)] = True
                self.released.add((k, c))
            if all((gj, c) in dropped for gj in by_ci[c]):  # nothing of this batch sees c: forget the values
                states[c] = self.forget_key_values(states[c], matches[gi][c], cs)

    def keys_only_from_source(self, state: CIState, keys: set[str]) -> bool:
        """Whether no other source's values (nor the CI's values without this source) yield ``keys``."""
        return keys.isdisjoint(self.keys_without(state))

    def keys_without(self, state: CIState) -> set[str]:
        """The keys the CI's values yield without this source's."""
        src = self.batch.source
        ancestors = self.schema.ci_class(state.cls).ancestors
        others: dict[str, Any] = {}
        for attr, cands in state.provenance.items():
            rest = {s: v for s, v in cands.items() if s != src}
            if attr != CLASS_ATTR and rest:
                win = resolve(rest, ancestors, attr, state.sightings, self.horizon, self.config)
                if win is not None:
                    others[attr] = win.value
        return self.all_keys(state.cls, state.provenance, others, without=src)

    def forget_key_values(self, state: CIState, keys: set[str], cs: ChangeSet) -> CIState:
        """This source's values that yielded ``keys`` (now another box's) out of the CI's provenance."""
        src = self.batch.source
        prov = {a: dict(v) for a, v in state.provenance.items()}
        for key in keys:
            names, _, values = key.split(":", 1)[-1].partition("=")
            for attr, wanted in zip(names.split("+"), values.split("|"), strict=False):
                mine = prov.get(attr, {}).get(src)
                if mine is None:
                    continue
                if isinstance(mine.value, list):
                    kept = [x for x in mine.value if normalize_key_value(x) != wanted]
                    if kept == mine.value:
                        continue
                    if kept:
                        prov[attr][src] = AttrValue(src, kept, self.batch.run_id, self.at)
                        self.event(cs, "ci.attr.dropped", ci_id=state.id, attr=attr, old=mine.value, new=kept)
                        continue
                elif normalize_key_value(mine.value) != wanted:
                    continue
                del prov[attr][src]
                if not prov[attr]:
                    del prov[attr]
                self.event(cs, "ci.attr.dropped", ci_id=state.id, attr=attr, old=mine.value)
        ancestors = self.schema.ci_class(state.cls).ancestors
        attrs: dict[str, Any] = {}
        winners: dict[str, str] = {}
        for attr, cands in prov.items():
            win = None if attr == CLASS_ATTR else resolve(cands, ancestors, attr, state.sightings, self.horizon,
                                                          self.config)
            if win is not None:
                attrs[attr], winners[attr] = win.value, win.source
        for attr in sorted(set(attrs) | set(state.attrs)):
            if attrs.get(attr) != state.attrs.get(attr):
                self.event(cs, "ci.attr", ci_id=state.id, attr=attr, old=state.attrs.get(attr), new=attrs.get(attr))
                cs.events[-1].source = winners.get(attr, src)
        changed = attrs != state.attrs
        out = CIState(state.id, state.cls, self.schema.display_name(state.cls, attrs) if changed else state.name,
                      state.status, attrs, state.created_at, self.at if changed else state.updated_at, prov,
                      state.sightings)
        cs.cis_changed.append(out)
        return out

    def retire_keys(self, cs: ChangeSet, key_map: dict[str, str]) -> None:
        """After matching: the keys noted are retired (those still the CI's), then conflicts closed."""
        if not self.ages or not self.keys_to_retire:
            return
        unsure = [k for (k, _), sure in self.keys_to_retire.items() if not sure]
        owner = {k: c for k, (c, _) in self.age_reader.resolve_keys(unsure).items()} if unsure else {}
        added = {k for k, _ in cs.keys}
        retired: list[tuple[str, str]] = []
        for (key, ci_id), sure in sorted(self.keys_to_retire.items()):
            if (sure or owner.get(key) == ci_id) and not (key in added and key_map.get(key) == ci_id):
                retired.append((key, ci_id))
                self.event(cs, "ci.key.retired", ci_id=ci_id, attr=key_name(key), old=key)
        cs.keys_retired.extend(retired)
        if retired:
            self.close_conflicts(cs, retired)

    def close_conflicts(self, cs: ChangeSet, retired: list[tuple[str, str]]) -> None:
        """Close recorded conflicts whose keys now point at one of their CIs at most."""
        gone = set(retired)
        conflicts = self.age_reader.open_conflicts(k for k, _ in retired)
        if not conflicts:
            return
        added = dict(cs.keys)
        keys = {k for c in conflicts for k in c.keys}
        stored = {k: c for k, (c, _) in self.age_reader.resolve_keys(keys).items()}
        recorded_now = {c.id for c in cs.conflicts} | set(cs.conflicts_closed)
        for conflict in conflicts:
            if conflict.id in recorded_now:
                continue
            owners = set()
            for k in conflict.keys:
                c = added.get(k) or stored.get(k)
                if c is not None and (k, c) not in gone and c in conflict.ci_ids:
                    owners.add(c)
            if len(owners) <= 1:
                cs.conflicts_closed.append(conflict.id)
                retired_keys = sorted(k for k in conflict.keys if any(k == g for g, _ in gone))
                cs.conflicts_closed_why[conflict.id] = (
                    f"keys retired by a complete {self.batch.source} run: {', '.join(retired_keys) or 'none'};"
                    " they no longer tie two of its CIs")
                ids = sorted(conflict.ci_ids)
                self.event(cs, "conflict.closed", ci_id=ids[0] if ids else None,
                           peer_id=ids[1] if len(ids) > 1 else None, attr=conflict.id,
                           old={"item": conflict.item, "keys": conflict.keys, "ci_ids": conflict.ci_ids})


def _value(prov: Provenance, attr: str, source: str) -> Any:
    v = prov.get(attr, {}).get(source)
    return None if v is None else v.value
