"""``Planner``: turns a batch into a ChangeSet; ``prepare`` is pure, ``plan`` runs inside the transaction."""

from __future__ import annotations

from cmdb.planning.cis import CIPlanning
from cmdb.planning.lifecycle import Lifecycle
from cmdb.planning.merging import MergePlanning
from cmdb.planning.prepare import Preparation
from cmdb.planning.rels import RelPlanning
from cmdb.planning.retirements import Retirements
from cmdb.planning.state import IngestResult
from cmdb.store.base import (
    BatchReader,
    ChangeSet,
    RunRecord,
)


class Planner(Preparation, CIPlanning, RelPlanning, Retirements, Lifecycle, MergePlanning):
    """Turns a batch into a ChangeSet; ``prepare`` is pure, ``plan`` runs inside the transaction."""

    def plan(self, reader: BatchReader) -> ChangeSet:
        """Build the ChangeSet; a store may call this again when it retries a transaction."""
        batch, at = self.batch, self.at
        result = self.result = IngestResult(run_id=batch.run_id)
        self.new_ids = set()
        self.reset_merges()
        cs = ChangeSet(
            run=RunRecord(batch.run_id, batch.source, batch.scope, batch.complete, at, at, batch.actor)
        )
        group_keys: set[str] = set()
        for group in self.groups:
            group_keys.update(group.keys)
        key_map, states = reader.match_keys(group_keys) if group_keys else ({}, {})
        self.start_ageing(reader)
        self.release_moved_keys(cs, key_map, states)  # cmdb.planning.ageing
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
        self.prefetch_reconciled(reader, key_map, states)
        self.outcomes: list[str] = []  # per item group: create | update | unchanged | conflict (cmdb.dryrun)
        for group in self.groups:
            # Matched, merged, updated or created, keys of its reconciled attributes registered
            # (cmdb.planning.merging); None when it was recorded as a conflict.
            counts = (result.created, result.updated)
            found = self.match_group(reader, cs, group, key_map, states, result)
            self.outcomes.append("conflict" if found is None else "create" if result.created > counts[0]
                                 else "update" if result.updated > counts[1] else "unchanged")
            if found is not None:
                self.report_disagreements(cs, group, found)
                seen_ci.add(found)
            group_ci.append(found)
        if self.merged_into:  # an earlier item's CI may have been merged into a later one's
            group_ci = [None if c is None else self.live(c) for c in group_ci]
            seen_ci = {self.live(c) for c in seen_ci}
            for k, c in key_map.items():
                key_map[k] = self.live(c)
        for cid in group_ci:
            if cid is not None:
                group_cls[cid] = states[cid].cls
        self.group_ci = group_ci  # the CI each item group ended in, after merges (None: a conflict)
        for ref, gi in self.ref_group.items():
            cid = group_ci[gi]
            if cid is not None:
                result.ci_ids[ref] = cid
        self.retire_keys(cs, key_map)
        self.drop_settled(reader, cs)  # conflicts about CIs declared separate are not raised again
        result.conflicts = cs.conflicts

        for ci_id, cls in ref_classes.items():
            group_cls.setdefault(ci_id, cls)
        seen_rel = self.plan_rels(reader, cs, key_map, states, group_ci, group_cls, result)
        self.plan_retirements(reader, cs, seen_ci, seen_rel, result)
        if batch.complete:  # a complete manual batch retires the manual items of its scope it no longer holds
            self.age_unseen(reader, cs, seen_ci, seen_rel, result)
        result.count_outcomes(cs)
        cs.run.stats = result.summary()
        self.event_count = len(cs.events)
        cs.run.stats["events"] = self.event_count
        return cs
