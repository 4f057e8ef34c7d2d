"""A dry run: ``ingest``'s own planner run against the store, its ChangeSet reported and never applied.

The plan is ingest's ``Planner.plan``, run by ``GraphStore.plan_read_only``: through the batch reader a
write gets, over one consistent read-only view of the store (a read transaction), so it reads what a
real import would read and cannot write anything, not even the run ledger, nor make a writer wait.
What the dry run reports is what the planner decided, never a second opinion: the counts are the
planner's own ``IngestResult.summary()`` (what ``ingest`` would answer), and each item's action is
the outcome the planner recorded for it (``Planner.outcomes``: an item whose keys tie two CIs that do
not contradict is an update that merges them, as ingest does it, not a conflict). A recording reader
remembers which identity key matched which CI, so every matched item can say why it is an update of
that CI and not a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.batch import Batch
from cmdb.identity import ItemGroup
from cmdb.model import Schema
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import BatchReader, ChangeSet, CIState, Conflict, GraphStore, RelState, Sighting


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
        found = self.inner.load_cis(ids)
        for ci_id, state in found.items():
            self.states.setdefault(ci_id, state)
        return found

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
    merged: list[str] = field(default_factory=list)  # CIs this item proves to be ``ci_id``, merged into it


@dataclass
class BatchPlan:
    items: list[ItemPlan]
    rels_created: int
    rels_updated: int
    events: int
    summary: dict[str, int] = field(default_factory=dict)
    """What ``ingest`` would answer for this batch (``IngestResult.summary()`` without the run id)."""


def _key_label(key: str) -> str:
    return key.split(":", 1)[1] if ":" in key else key


def _describe(group: ItemGroup, action: str, ci_id: str | None, reader: _RecordingReader, schema: Schema,
              source: str, changed: dict[str, CIState], merged_into: dict[str, str]) -> ItemPlan:
    """One item group as the planner placed it: ``action`` and ``ci_id`` are the planner's outcome."""
    items = [r.index for r in group.items]
    matched = sorted({reader.key_map[k] for k in group.keys if k in reader.key_map})
    name = schema.display_name(group.cls, group.attrs) or ", ".join(
        f"{a}={v}" for a, v in sorted(group.attrs.items()))
    if action == "conflict" or ci_id is None:
        return ItemPlan(items, "conflict", group.cls, name, conflict_ids=matched,
                        matched_by=[f"{_key_label(k)} -> {reader.key_map[k]}" for k in group.keys
                                    if k in reader.key_map])
    merged = sorted(dup for dup in merged_into if _live(dup, merged_into) == ci_id)
    if action == "create":
        return ItemPlan(items, "create", group.cls, name, ci_id=ci_id, merged=merged)
    mine = {ci_id, *merged}
    before = reader.states.get(ci_id)
    after = changed.get(ci_id, before)
    matched_by = [_key_label(k) if reader.key_map[k] == ci_id else f"{_key_label(k)} -> {reader.key_map[k]}"
                  for k in group.keys if reader.key_map.get(k) in mine]
    if before is None or after is None:  # created by an earlier item of this batch
        return ItemPlan(items, action, group.cls, name, ci_id=ci_id, matched_by=matched_by, merged=merged)
    plan = ItemPlan(items, action, after.cls, after.name or before.name or name, ci_id=ci_id,
                    matched_by=matched_by, merged=merged)
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
    return plan


def _live(ci_id: str, merged_into: dict[str, str]) -> str:
    while ci_id in merged_into:
        ci_id = merged_into[ci_id]
    return ci_id


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
        return planner.plan(rec)

    cs = store.plan_read_only(plan)  # the reader a write gets, over a read-only view: no lock, no write
    reader = recorder[0]
    changed = {c.id: c for c in cs.cis_changed}
    merged_into = {m.dup: m.keep for m in cs.merges}
    items = [_describe(g, action, ci_id, reader, schema, batch.source, changed, merged_into)
             for g, action, ci_id in zip(planner.groups, planner.outcomes, planner.group_ci, strict=True)]
    summary = planner.result.summary()
    summary["events"] = len(cs.events)
    return BatchPlan(items, summary["rels_created"], summary["rels_updated"], len(cs.events), summary)
