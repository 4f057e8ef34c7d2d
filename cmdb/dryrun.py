"""A dry run: ``ingest``'s own planner run against the store, its ChangeSet reported and never applied.

The plan runs inside the store's write transaction (so it reads exactly what a real import would)
and then raises, which rolls the transaction back: nothing is written, not even the run ledger.
A recording reader remembers which identity key matched which CI, so every matched item can say
why it is an update of that CI and not a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import CmdbError
from cmdb.identity import ItemGroup
from cmdb.model import Schema
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import BatchReader, ChangeSet, CIState, Conflict, GraphStore, RelState, Sighting


class _PlanOnly(CmdbError):
    """Raised out of the plan to roll the transaction back; carries what would have been written."""

    def __init__(self, cs: ChangeSet) -> None:
        super().__init__("dry run")
        self.cs = cs


class _RecordingReader:
    """A BatchReader that remembers the key matches and the states as the store had them."""

    def __init__(self, inner: BatchReader) -> None:
        self.inner = inner
        self.key_map: dict[str, str] = {}
        self.states: dict[str, CIState] = {}

    def match_keys(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, CIState]]:
        key_map, states = self.inner.match_keys(keys)
        self.key_map.update(key_map)
        self.states.update(states)
        return key_map, states

    def resolve_keys(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        return self.inner.resolve_keys(keys)

    def load_cis(self, ids: Iterable[str]) -> dict[str, CIState]:
        return self.inner.load_cis(ids)

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        return self.inner.load_rels(triples)

    def scopes(self, source: str) -> list[str]:
        return self.inner.scopes(source)

    def sightings_in(self, source: str, scopes: list[str]
                     ) -> tuple[list[tuple[str, Sighting]], list[tuple[str, Sighting]]]:
        return self.inner.sightings_in(source, scopes)

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]:
        return self.inner.load_rels_by_id(ids)

    def run_scopes(self, run_ids: Iterable[str]) -> dict[str, str | None]:
        return self.inner.run_scopes(run_ids)

    def open_conflicts(self, keys: Iterable[str]) -> list[Conflict]:
        return self.inner.open_conflicts(keys)

    def rels_touching(self, ci_ids: Iterable[str]) -> list[RelState]:
        return self.inner.rels_touching(ci_ids)

    def kept_separate(self, ci_ids: Iterable[str]) -> list[list[str]]:
        return self.inner.kept_separate(ci_ids)


@dataclass
class AttrChange:
    attr: str
    old: Any
    new: Any
    winner: str  # the source whose value is the resolved one
    offered: Any = None  # what this import says, when another source's value wins


@dataclass
class ItemPlan:
    """What the batch would do to one CI: create, update or leave it alone, and why it matched."""

    items: list[int]  # indexes of the batch's CI records that describe it
    action: str  # create | update | unchanged | conflict
    cls: str
    name: str | None
    ci_id: str | None = None
    matched_by: list[str] = field(default_factory=list)  # "serial_number=srv-1"
    changes: list[AttrChange] = field(default_factory=list)
    kept: list[AttrChange] = field(default_factory=list)  # values this import offers that lose
    conflict_ids: list[str] = field(default_factory=list)


@dataclass
class BatchPlan:
    items: list[ItemPlan]
    rels_created: int
    rels_updated: int
    events: int


def _key_label(key: str) -> str:
    return key.split(":", 1)[1] if ":" in key else key


def _describe(group: ItemGroup, reader: _RecordingReader, cs: ChangeSet, schema: Schema,
              source: str, changed: dict[str, CIState], created: dict[str, CIState],
              created_by_key: dict[str, str]) -> ItemPlan:
    items = [r.index for r in group.items]
    matched = sorted({reader.key_map[k] for k in group.keys if k in reader.key_map})
    name = schema.display_name(group.cls, group.attrs) or ", ".join(
        f"{a}={v}" for a, v in sorted(group.attrs.items()))
    if len(matched) > 1:
        return ItemPlan(items, "conflict", group.cls, name, conflict_ids=matched,
                        matched_by=[f"{_key_label(k)} -> {reader.key_map[k]}" for k in group.keys
                                    if k in reader.key_map])
    if not matched:
        ci_id = next((created_by_key[k] for k in group.keys if k in created_by_key), None)
        return ItemPlan(items, "create", group.cls, name, ci_id=ci_id)
    ci_id = matched[0]
    before = reader.states[ci_id]
    after = changed.get(ci_id, before)
    plan = ItemPlan(items, "unchanged", before.cls, before.name or name, ci_id=ci_id,
                    matched_by=[_key_label(k) for k in group.keys if reader.key_map.get(k) == ci_id])
    for attr in sorted(set(before.attrs) | set(after.attrs)):
        old, new = before.attrs.get(attr), after.attrs.get(attr)
        if old != new:
            plan.changes.append(AttrChange(attr, old, new, _winner(after, attr, new, source)))
    if after.cls != before.cls:
        plan.changes.insert(0, AttrChange("class", before.cls, after.cls, source))
    for attr, offered in sorted(group.attrs.items()):
        resolved = after.attrs.get(attr)
        if resolved != offered:
            plan.kept.append(AttrChange(attr, resolved, resolved, _winner(after, attr, resolved, source), offered))
    if plan.changes or after.status != before.status:
        plan.action = "update"
    return plan


def _winner(state: CIState, attr: str, value: Any, default: str) -> str:
    for src, v in (state.provenance.get(attr) or {}).items():
        if v.value == value:
            return src
    return default


def plan_batch(store: GraphStore, batch: Batch, *, schema: Schema, config: ReconcileConfig,
               now: datetime | None = None) -> BatchPlan:
    """What ``ingest(store, batch)`` would do, item by item; the store is left as it was."""
    planner = Planner(schema, config, batch, now or datetime.now(UTC))
    planner.prepare()
    recorder: list[_RecordingReader] = []

    def plan(reader: BatchReader) -> ChangeSet:
        rec = _RecordingReader(reader)
        recorder[:] = [rec]
        raise _PlanOnly(planner.plan(rec))

    try:
        store.write_batch(plan)
    except _PlanOnly as done:
        cs = done.cs
    else:  # pragma: no cover - plan always raises
        raise AssertionError("the dry-run plan returned")
    reader = recorder[0]
    changed = {c.id: c for c in cs.cis_changed}
    created = {c.id: c for c in cs.cis_new}
    created_by_key = {k: cid for k, cid in cs.keys if cid in created}
    items = [_describe(g, reader, cs, schema, batch.source, changed, created, created_by_key)
             for g in planner.groups]
    return BatchPlan(items, len(cs.rels_new), len(cs.rels_changed), len(cs.events))
