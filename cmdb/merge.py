"""Merging two CIs by hand, and resolving identity conflicts (``cmdb ci merge``, ``cmdb conflicts
resolve``, ``POST /api/v1/conflicts/{id}/resolve``).

A merge is written like a batch of the ``manual`` source (one transaction, a run-ledger entry, history
events with the actor) by the same code that merges automatically during ingest
(``cmdb.planning.merging.MergePlanning.fold``): relationships move to the kept CI, provenance,
sightings and identity keys are combined, both histories stay, and the duplicate's id and name
resolve to the kept CI from then on. A dry run plans the same change set inside the write
transaction and rolls it back.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import BadInputError, CmdbError, NotFoundError
from cmdb.model import Schema, default_schema
from cmdb.planning.planner import Planner
from cmdb.planning.state import IngestResult
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import BatchReader, ChangeSet, CIState, GraphStore, RunRecord, iso
from cmdb.store.merges import RESOLUTIONS, ConflictResolution

SOURCE = "manual"


@dataclass
class MergeReport:
    kept: str
    merged: str
    dry_run: bool
    cls: str
    name: str | None
    attrs: dict[str, Any]
    rels_moved: int
    events: int
    conflict: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)  # the history events, as written


class _DryRun(CmdbError):
    """Raised inside the write transaction to roll a dry run back."""


def merge_cis(store: GraphStore, keep: str, duplicate: str, *, actor: str | None = None, dry_run: bool = False,
              resolves: str | None = None, schema: Schema | None = None, config: ReconcileConfig | None = None,
              now: datetime | None = None) -> MergeReport:
    """Fold ``duplicate`` into ``keep`` (both CI ids); ``resolves`` names a conflict it settles."""
    if keep == duplicate:
        raise BadInputError(f"cannot merge {keep} into itself; name two different CIs")
    now = now or datetime.now(UTC)
    at = iso(now)
    batch = Batch(source=SOURCE, run_id=f"manual-merge-{uuid.uuid4().hex[:12]}", actor=actor, origin="merge")
    planner = Planner(schema or default_schema(), config or ReconcileConfig(), batch, now)
    report: list[MergeReport] = []

    def plan(reader: BatchReader) -> ChangeSet:
        report.clear()
        planner.reset_merges()
        cs = ChangeSet(run=RunRecord(batch.run_id, SOURCE, "-", False, at, at, actor))
        states = reader.load_cis([keep, duplicate])
        for ci_id in (keep, duplicate):
            if ci_id not in states:
                raise NotFoundError(f"no CI {ci_id}; `cmdb ci search` finds one (a merged-away id names its kept CI)")
        kept, dup = states[keep], states[duplicate]
        n_rels = len(reader.rels_touching([duplicate]))
        merged = planner.fold(reader, cs, kept, dup, {"by": actor or SOURCE, "conflict": resolves}, resolves)
        counts = IngestResult(batch.run_id, updated=1, rels_created=len(cs.rels_new),
                              rels_updated=len(cs.rels_changed), events=len(cs.events))
        counts.count_outcomes(cs)  # merged: 1, as a batch that merges reports it
        cs.run.stats = counts.summary()
        report.append(_report(merged, duplicate, dry_run, n_rels, cs, resolves))
        if dry_run:
            raise _DryRun("dry run")
        return cs

    with contextlib.suppress(_DryRun):  # the dry run's transaction is rolled back, its plan reported
        store.write_batch(plan)
    return report[0]


def _report(merged: CIState, duplicate: str, dry_run: bool, n_rels: int, cs: ChangeSet,
            resolves: str | None) -> MergeReport:
    changes = [{"kind": e.kind, "ci_id": e.ci_id, "peer_id": e.peer_id, "attr": e.attr, "old": e.old, "new": e.new}
               for e in cs.events]
    return MergeReport(merged.id, duplicate, dry_run, merged.cls, merged.name, merged.attrs, n_rels, len(cs.events),
                       resolves, changes)


def resolve_conflict(store: GraphStore, conflict_id: str, action: str, *, keep: str | None = None,
                     actor: str | None = None, dry_run: bool = False, now: datetime | None = None,
                     schema: Schema | None = None) -> tuple[ConflictResolution, MergeReport | None]:
    """``merge``: the conflict's CIs merged into ``keep`` (default: its first CI) and the conflict
    closed in the same transaction; ``keep_separate``: the CIs stay apart and are neither merged nor
    reported again for this reason."""
    if action not in ("merge", "keep_separate"):
        raise BadInputError(f"unknown resolution {action!r}; use merge or keep_separate")
    conflict = store.conflict(conflict_id)
    if conflict is None:
        raise NotFoundError(f"no identity conflict {conflict_id!r}; `cmdb conflicts` lists them")
    if conflict.resolution is not None:
        raise BadInputError(f"conflict {conflict_id} was already resolved ({conflict.resolution} at "
                            f"{conflict.resolved_at}); nothing to do")
    if conflict.closed_at is not None:
        raise BadInputError(f"conflict {conflict_id} was closed at {conflict.closed_at} by run {conflict.closed_run}"
                            f" ({conflict.closed_reason}); nothing to resolve (`cmdb ci merge` merges two CIs)")
    at = iso(now or datetime.now(UTC))
    live = [store.resolve_alias(c) or c for c in conflict.ci_ids]
    if action == "keep_separate":
        resolution = ConflictResolution(conflict_id, "keep_separate", at, actor, sorted(set(live)))
        if not dry_run:
            store.resolve_conflict(resolution)
        return resolution, None
    distinct = sorted(set(live))
    if len(distinct) < 2:
        raise BadInputError(f"conflict {conflict_id} names one CI ({distinct[0]}): there is nothing to merge;"
                            " resolve it with keep_separate")
    if len(distinct) > 2:
        raise BadInputError(f"conflict {conflict_id} names {len(distinct)} CIs; merge them pairwise with"
                            " `cmdb ci merge`, then resolve it with keep_separate")
    kept = store.resolve_alias(keep) or keep if keep is not None else live[0]
    if kept not in distinct:
        raise BadInputError(f"{keep} is not one of the conflict's CIs ({', '.join(distinct)})")
    other = next(c for c in distinct if c != kept)
    report = merge_cis(store, kept, other, actor=actor, dry_run=dry_run, resolves=conflict_id, schema=schema)
    return ConflictResolution(conflict_id, "merged", at, actor, [kept, other]), report


__all__ = ["RESOLUTIONS", "MergeReport", "merge_cis", "resolve_conflict"]
