"""``ingest``: the one door into the store.

A batch is validated whole before the store is touched, then identified against the store in bulk,
reconciled attribute by attribute, and written in one transaction together with its history events,
sightings, run-ledger entry and any identity conflicts. Re-ingesting an unchanged batch refreshes
sightings and writes no history.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.batch import Batch, CIRecord, IdentityRef, Ref, RelRecord
from cmdb.errors import BadInputError, CmdbError
from cmdb.identity import ItemGroup, identity_keys, merge_batch_items
from cmdb.model import Schema, default_schema
from cmdb.partitions import assign_partitions
from cmdb.reconcile import MANUAL_SOURCES, ReconcileConfig, freshness_horizon, is_fresh, resolve
from cmdb.store.base import (
    STATUS_RANK,
    AttrValue,
    BatchReader,
    ChangeSet,
    CIState,
    Conflict,
    Event,
    GraphStore,
    RelState,
    RunRecord,
    Sighting,
    SightingWrite,
    iso,
    rel_id_for,
)

CLASS_ATTR = "@class"  # provenance slot for the class each source claims
DEFAULT_SCOPE = "-"


@dataclass
class IngestResult:
    run_id: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rels_created: int = 0
    rels_updated: int = 0
    events: int = 0
    stale: int = 0
    retired: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    ci_ids: dict[str, str] = field(default_factory=dict)  # batch ref -> CI id

    def summary(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rels_created": self.rels_created,
            "rels_updated": self.rels_updated,
            "events": self.events,
            "stale": self.stale,
            "retired": self.retired,
            "conflicts": len(self.conflicts),
        }


@dataclass
class _PreparedRel:
    rec: RelRecord
    attrs: dict[str, Any]
    src_keys: dict[str, str] | None = None
    dst_keys: dict[str, str] | None = None


def new_ci_id() -> str:
    """Time-ordered ids: a batch's new CIs land next to each other in every index keyed by CI id,
    so a commit writes a few sequential pages instead of one random page per CI and index."""
    return f"ci-{time.time_ns():016x}{secrets.token_hex(3)}"


def scope_covers(outer: str, inner: str) -> bool:
    """Whether a run over ``outer`` is a complete look at ``inner`` (equal, or a containing CIDR)."""
    if outer == inner:
        return True
    try:
        return ipaddress.ip_network(inner, strict=False).subnet_of(
            ipaddress.ip_network(outer, strict=False)  # type: ignore[arg-type]
        )
    except (ValueError, TypeError):
        return False


def derive_status(sightings: Iterable[Sighting]) -> str:
    best = "retired"
    seen_any = False
    for s in sightings:
        seen_any = True
        if s.source in MANUAL_SOURCES:  # a manual word is final: retired by hand stays retired (cmdb.retire)
            return "retired" if s.status == "retired" else "active"
        if STATUS_RANK[s.status] < STATUS_RANK[best]:
            best = s.status
    return best if seen_any else "active"


def ingest(
    store: GraphStore,
    batch: Batch,
    *,
    schema: Schema | None = None,
    config: ReconcileConfig | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Identify, reconcile and write ``batch`` atomically; raises BadInputError naming the bad item."""
    schema = schema or default_schema()
    config = config or ReconcileConfig()
    now = now or datetime.now(UTC)
    planner = _Planner(schema, config, batch, now)
    planner.prepare()
    store.write_batch(planner.plan)
    result = planner.result
    result.events = planner.event_count
    return result


class _Planner:
    """Turns a batch into a ChangeSet; ``prepare`` is pure, ``plan`` runs inside the transaction."""

    def __init__(self, schema: Schema, config: ReconcileConfig, batch: Batch, now: datetime) -> None:
        self.schema = schema
        self.config = config
        self.batch = assign_partitions(batch)  # the configured partition rules (cmdb.partitions)
        self.now = now
        self.at = iso(now)
        self.horizon = freshness_horizon(now, config)
        self.scope = batch.scope or DEFAULT_SCOPE
        self.groups: list[ItemGroup] = []
        self.ref_group: dict[str, int] = {}
        self.rels: list[_PreparedRel] = []
        self.event_count = 0
        self._ref_cache: dict[IdentityRef, dict[str, str]] = {}
        self._new_ids: set[str] = set()  # CIs this plan creates
        self.result = IngestResult(run_id=batch.run_id)

    def _rel_attrs_to_write(self, old: RelState, attrs: dict[str, Any]) -> dict[str, Any]:
        """The batch's relationship attributes minus values a stronger source, still seeing the
        relationship, said otherwise: two collectors that disagree must not flip a value every run."""
        source = self.batch.source
        others = {s.source for s in old.sightings.values()
                  if s.source != source and s.status == "active" and s.last_seen >= self.horizon}
        if not others:
            return attrs
        out: dict[str, Any] = {}
        for attr, value in attrs.items():
            if attr in old.attrs and old.attrs[attr] != value:
                mine = self.config.rank(source, (old.type,), attr)
                if any(self.config.rank(o, (old.type,), attr) < mine for o in others):
                    continue
            out[attr] = value
        return out

    def _fail(self, where: str, msg: str, cause: CmdbError | None = None) -> BadInputError:
        """A BadInputError naming the batch and item; keeps the cause's subclass (UnknownClassError)."""
        kind = type(cause) if isinstance(cause, BadInputError) else BadInputError
        return kind(f"{self.batch.origin}: {where}: {msg}; nothing of this batch was written")

    # -- validation, before the store is touched ------------------------------------------------
    def prepare(self) -> None:
        schema, batch = self.schema, self.batch
        if not batch.source or any(c.isspace() for c in batch.source):
            raise BadInputError(f"{batch.origin}: source {batch.source!r} must be a word like snmp or import:csv")
        items: list[tuple[CIRecord, dict[str, Any]]] = []
        item_keys: list[dict[str, str]] = []
        refs: dict[str, CIRecord] = {}
        for rec in batch.cis:
            try:
                attrs = schema.validate(rec.cls, rec.attrs)
            except CmdbError as exc:
                raise self._fail(rec.describe(), str(exc), exc) from None
            keys = identity_keys(schema, rec.cls, attrs)
            item_keys.append(keys)
            if not keys:
                names = " | ".join("+".join(k) for k in schema.ci_class(rec.cls).identity)
                raise self._fail(rec.describe(), f"no identity attributes; give one of: {names}")
            if rec.ref is not None:
                if rec.ref in refs:
                    raise self._fail(rec.describe(), f"ref {rec.ref!r} is already used by {refs[rec.ref].describe()}")
                refs[rec.ref] = rec
            items.append((rec, attrs))
        self.groups = merge_batch_items(schema, items, item_keys)
        for gi, group in enumerate(self.groups):
            for rec in group.items:
                if rec.ref is not None:
                    self.ref_group[rec.ref] = gi
        for rel in batch.rels:
            try:
                rtype = schema.rel_type(rel.type)
            except CmdbError as exc:
                raise self._fail(rel.describe(), str(exc), exc) from None
            if not isinstance(rel.attrs, dict):
                raise self._fail(rel.describe(), "attributes must be a mapping")
            prepared = _PreparedRel(rel, dict(rel.attrs))
            for side in ("src", "dst"):
                end: Ref = getattr(rel, side)
                if isinstance(end, str):
                    if end not in self.ref_group:
                        raise self._fail(
                            rel.describe(),
                            f"{'from' if side == 'src' else 'to'} names ref {end!r}, which is not an item of "
                            "this batch (use {class: ..., <key>: ...} for a CI already in the store)",
                        )
                else:
                    setattr(prepared, f"{side}_keys", self._ref_keys(rel, end))
            self.rels.append(prepared)
            del rtype

    def _ref_keys(self, rel: RelRecord, ref: IdentityRef) -> dict[str, str]:
        try:
            cached = self._ref_cache.get(ref)
        except TypeError:  # a list value in the reference (MACs): not hashable, not cached
            cached = None
        if cached is not None:
            return cached
        try:
            attrs = self.schema.validate(ref.cls, dict(ref.attrs))
        except CmdbError as exc:
            raise self._fail(rel.describe(), f"reference {ref.describe()}: {exc}", exc) from None
        keys = identity_keys(self.schema, ref.cls, attrs)
        if not keys:
            names = " | ".join("+".join(k) for k in self.schema.ci_class(ref.cls).identity)
            raise self._fail(rel.describe(), f"reference {ref.describe()} has no identity key; give one of: {names}")
        with contextlib.suppress(TypeError):
            self._ref_cache[ref] = keys
        return keys

    # -- planning, inside the write transaction ---------------------------------------------------
    def plan(self, reader: BatchReader) -> ChangeSet:
        """Build the ChangeSet; a store may call this again when it retries a transaction."""
        batch, at = self.batch, self.at
        result = self.result = IngestResult(run_id=batch.run_id)
        self._new_ids = set()
        cs = ChangeSet(
            run=RunRecord(batch.run_id, batch.source, batch.scope, batch.complete, at, at, batch.actor)
        )
        group_keys: set[str] = set()
        for group in self.groups:
            group_keys.update(group.keys)
        key_map, states = reader.match_keys(group_keys) if group_keys else ({}, {})
        ref_keys: set[str] = set()
        for rel in self.rels:
            ref_keys.update(rel.src_keys or ())
            ref_keys.update(rel.dst_keys or ())
        ref_keys -= group_keys
        ref_classes: dict[str, str] = {}
        if ref_keys:
            for key, (ci_id, cls) in reader.resolve_keys(ref_keys).items():
                key_map[key] = ci_id
                ref_classes[ci_id] = cls

        group_ci: list[str | None] = []
        group_cls: dict[str, str] = {}
        seen_ci: set[str] = set()
        for group in self.groups:
            matched = sorted({key_map[k] for k in group.keys if k in key_map})
            if len(matched) > 1:
                cs.conflicts.append(self._conflict(group, key_map, matched))
                group_ci.append(None)
                continue
            if matched:
                ci_id = matched[0]
                # Written back: two groups of one batch may describe the same CI through different keys.
                states[ci_id] = self._update_ci(cs, states[ci_id], group, result)
                group_cls[ci_id] = states[ci_id].cls
            else:
                ci_id = self._create_ci(cs, group, result)
                group_cls[ci_id] = group.cls
            for key in group.keys:
                if key not in key_map:
                    key_map[key] = ci_id
                    cs.keys.append((key, ci_id))
            seen_ci.add(ci_id)
            group_ci.append(ci_id)
        for ref, gi in self.ref_group.items():
            cid = group_ci[gi]
            if cid is not None:
                result.ci_ids[ref] = cid
        result.conflicts = cs.conflicts

        for ci_id, cls in ref_classes.items():
            group_cls.setdefault(ci_id, cls)
        seen_rel = self._plan_rels(reader, cs, key_map, states, group_ci, group_cls, result)
        if batch.complete and batch.source not in MANUAL_SOURCES:
            self._age_unseen(reader, cs, seen_ci, seen_rel, result)
        cs.run.stats = result.summary()
        self.event_count = len(cs.events)
        cs.run.stats["events"] = self.event_count
        return cs

    def _event(self, cs: ChangeSet, kind: str, **kw: Any) -> None:
        cs.events.append(
            Event(at=self.at, kind=kind, source=self.batch.source, run_id=self.batch.run_id,
                  actor=self.batch.actor, **kw)
        )

    def _sighting(self, existing: Sighting | None) -> Sighting:
        first = existing.first_seen if existing else self.at
        return Sighting(self.batch.source, self.scope, first, self.at, self.batch.run_id, 0, "active")

    def _conflict(self, group: ItemGroup, key_map: dict[str, str], matched: list[str]) -> Conflict:
        keys = {k: key_map[k] for k in sorted(group.keys) if k in key_map}
        digest = hashlib.sha1(
            "|".join([self.batch.source, group.cls, *sorted(keys), *matched]).encode()
        ).hexdigest()[:16]
        return Conflict(
            id=f"conflict-{digest}", at=self.at, source=self.batch.source, run_id=self.batch.run_id,
            item=group.describe(), item_class=group.cls, keys=keys, ci_ids=matched, attrs=group.attrs,
        )

    def _create_ci(self, cs: ChangeSet, group: ItemGroup, result: IngestResult) -> str:
        schema = self.schema
        attrs = schema.with_defaults(group.cls, group.attrs)
        try:
            schema.check_required(group.cls, attrs)
        except CmdbError as exc:
            raise self._fail(group.describe(), str(exc)) from None
        ci_id = new_ci_id()
        self._new_ids.add(ci_id)
        src, run = self.batch.source, self.batch.run_id
        sighting = self._sighting(None)
        state = CIState(
            id=ci_id, cls=group.cls, name=schema.display_name(group.cls, attrs), status="active",
            attrs=attrs, created_at=self.at, updated_at=self.at,
            provenance={a: {src: AttrValue(src, v, run, self.at)} for a, v in attrs.items()},
            sightings={(src, self.scope): sighting},
        )
        state.provenance[CLASS_ATTR] = {src: AttrValue(src, group.cls, run, self.at)}
        cs.cis_new.append(state)
        cs.sightings.append(SightingWrite("ci", ci_id, sighting))
        self._event(cs, "ci.created", ci_id=ci_id, new={"class": group.cls, "attrs": attrs})
        result.created += 1
        return ci_id

    def _update_ci(self, cs: ChangeSet, state: CIState, group: ItemGroup, result: IngestResult) -> CIState:
        src, run, at = self.batch.source, self.batch.run_id, self.at
        prov = {a: dict(v) for a, v in state.provenance.items()}
        prov_changed = False
        for attr, value in [(CLASS_ATTR, group.cls), *group.attrs.items()]:
            mine = prov.setdefault(attr, {}).get(src)
            if mine is None or mine.value != value:
                prov[attr][src] = AttrValue(src, value, run, at)
                prov_changed = True
        key = (src, self.scope)
        sightings = dict(state.sightings)
        sightings[key] = self._sighting(sightings.get(key))
        cs.sightings.append(SightingWrite("ci", state.id, sightings[key]))

        new_cls = self._resolve_class(state, prov, sightings)
        ancestors = self.schema.ci_class(new_cls).ancestors
        attrs: dict[str, Any] = {}
        winners: dict[str, str] = {}
        for attr, candidates in prov.items():
            if attr == CLASS_ATTR:
                continue
            win = resolve(candidates, ancestors, attr, sightings, self.horizon, self.config)
            if win is not None:
                attrs[attr] = win.value
                winners[attr] = win.source
        status = derive_status(sightings.values())
        changed = False
        if new_cls != state.cls:
            self._event(cs, "ci.class", ci_id=state.id, attr="class", old=state.cls, new=new_cls)
            changed = True
        for attr in sorted(set(attrs) | set(state.attrs)):
            old, new = state.attrs.get(attr), attrs.get(attr)
            if old != new:
                self._event(cs, "ci.attr", ci_id=state.id, attr=attr, old=old, new=new)
                cs.events[-1].source = winners.get(attr, src)
                changed = True
        if status != state.status:
            self._event(cs, "ci.status", ci_id=state.id, attr="status", old=state.status, new=status)
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

    def _resolve_class(self, state: CIState, prov: dict[str, dict[str, AttrValue]],
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

    # -- relationships ---------------------------------------------------------------------------
    def _endpoint(self, rel: _PreparedRel, side: str, key_map: dict[str, str],
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
            raise self._fail(
                rel.rec.describe(),
                f"{end.describe()} matches no CI; load it first or include it in this batch",
            )
        if len(found) > 1:
            raise self._fail(rel.rec.describe(), f"{end.describe()} matches several CIs: {', '.join(found)}")
        return found[0]

    def _plan_rels(self, reader: BatchReader, cs: ChangeSet, key_map: dict[str, str],
                   states: dict[str, CIState], group_ci: list[str | None], group_cls: dict[str, str],
                   result: IngestResult) -> set[str]:
        wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        allowed_ok: dict[tuple[str, str, str], bool] = {}  # (type, side, class) -> may that class be there
        schema = self.schema
        for rel in self.rels:
            src = self._endpoint(rel, "src", key_map, group_ci)
            dst = self._endpoint(rel, "dst", key_map, group_ci)
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
                    raise self._fail(
                        rel.rec.describe(), f"{label} end is a {cls}; {rtype.name} expects {' or '.join(allowed)}"
                    )
            triple = (rtype.name, src, dst)
            prior = wanted.get(triple)
            wanted[triple] = {**prior, **rel.attrs} if prior else rel.attrs
        # A relationship with an end created by this batch cannot exist yet: no need to look for it.
        new = self._new_ids
        known = [t for t in wanted if t[1] not in new and t[2] not in new]
        existing = reader.load_rels(known) if known else {}
        seen: set[str] = set()
        # One sighting object for every relationship this batch creates (records are never mutated).
        fresh = self._sighting(None)
        fresh_key = (fresh.source, fresh.scope)
        at, source, run_id, actor = self.at, self.batch.source, self.batch.run_id, self.batch.actor
        for triple, attrs in wanted.items():
            old = existing.get(triple) if existing else None
            if old is None:
                tname, src, dst = triple
                rel_id = rel_id_for(tname, src, dst)
                cs.rels_new.append(RelState(rel_id, tname, src, dst, attrs, "active", at, at, {fresh_key: fresh}))
                cs.sightings.append(SightingWrite("rel", rel_id, fresh))
                cs.events.append(Event(at, "rel.created", source, run_id, src, rel_id, dst, tname, None, attrs, actor))
                result.rels_created += 1
                seen.add(rel_id)
                continue
            seen.add(old.id)
            key = (self.batch.source, self.scope)
            sightings = dict(old.sightings)
            sightings[key] = self._sighting(sightings.get(key))
            cs.sightings.append(SightingWrite("rel", old.id, sightings[key]))
            merged = {**old.attrs, **self._rel_attrs_to_write(old, attrs)}
            status = derive_status(sightings.values())
            changed = False
            for attr in sorted(set(merged) | set(old.attrs)):
                if merged.get(attr) != old.attrs.get(attr):
                    self._event(cs, "rel.attr", rel_id=old.id, ci_id=old.src, peer_id=old.dst, attr=attr,
                                old=old.attrs.get(attr), new=merged.get(attr))
                    changed = True
            if status != old.status:
                self._event(cs, "rel.status", rel_id=old.id, ci_id=old.src, peer_id=old.dst, attr="status",
                            old=old.status, new=status)
                changed = True
            if changed:
                cs.rels_changed.append(RelState(old.id, old.type, old.src, old.dst, merged, status,
                                                old.created_at, self.at))
                result.rels_updated += 1
        return seen

    # -- lifecycle ------------------------------------------------------------------------------
    def _age_unseen(self, reader: BatchReader, cs: ChangeSet, seen_ci: set[str], seen_rel: set[str],
                    result: IngestResult) -> None:
        """A complete run ages what its source saw before in the covered scopes and not now."""
        batch, cfg = self.batch, self.config
        covered = [s for s in reader.scopes(batch.source) if scope_covers(self.scope, s)]
        if not covered:
            return
        ci_sights, rel_sights = reader.sightings_in(batch.source, covered)
        flips_ci: dict[str, list[Sighting]] = {}
        flips_rel: dict[str, list[Sighting]] = {}
        for kind, pairs, seen, flips in (("ci", ci_sights, seen_ci, flips_ci),
                                          ("rel", rel_sights, seen_rel, flips_rel)):
            for item_id, s in pairs:
                if item_id in seen or s.last_run == batch.run_id:
                    continue
                missed = s.missed + 1
                status = ("retired" if missed >= cfg.retire_after_runs
                          else "stale" if missed >= cfg.stale_after_runs else "active")
                aged = Sighting(s.source, s.scope, s.first_seen, s.last_seen, s.last_run, missed, status)
                cs.sightings.append(SightingWrite(kind, item_id, aged))  # type: ignore[arg-type]
                if status != s.status:
                    flips.setdefault(item_id, []).append(aged)
        if flips_ci:
            for ci_id, state in sorted(reader.load_cis(flips_ci).items()):  # store-independent event order
                sightings = dict(state.sightings)
                for s in flips_ci[ci_id]:
                    sightings[(s.source, s.scope)] = s
                status = derive_status(sightings.values())
                if status != state.status:
                    self._event(cs, "ci.status", ci_id=ci_id, attr="status", old=state.status, new=status)
                    cs.cis_changed.append(CIState(state.id, state.cls, state.name, status, state.attrs,
                                                  state.created_at, self.at, state.provenance))
                    if status == "stale":
                        result.stale += 1
                    elif status == "retired":
                        result.retired += 1
        if flips_rel:
            for rel_id, rel in sorted(reader.load_rels_by_id(flips_rel).items()):
                sightings = dict(rel.sightings)
                for s in flips_rel[rel_id]:
                    sightings[(s.source, s.scope)] = s
                status = derive_status(sightings.values())
                if status != rel.status:
                    self._event(cs, "rel.status", rel_id=rel_id, ci_id=rel.src, peer_id=rel.dst,
                                attr="status", old=rel.status, new=status)
                    cs.rels_changed.append(RelState(rel.id, rel.type, rel.src, rel.dst, rel.attrs, status,
                                                    rel.created_at, self.at))

