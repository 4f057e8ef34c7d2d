"""Lifecycle: a complete run ages what its source saw before in the covered scopes and not now
(stale, then retired); discovery never deletes."""

from __future__ import annotations

from cmdb.planning.state import IngestResult, PlannerState, derive_status
from cmdb.scopes import scope_covers
from cmdb.store.base import (
    BatchReader,
    ChangeSet,
    CIState,
    RelState,
    Sighting,
    SightingWrite,
)


class Lifecycle(PlannerState):
    def age_unseen(self, reader: BatchReader, cs: ChangeSet, seen_ci: set[str], seen_rel: set[str],
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
                    self.event(cs, "ci.status", ci_id=ci_id, attr="status", old=state.status, new=status)
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
                    self.event(cs, "rel.status", rel_id=rel_id, ci_id=rel.src, peer_id=rel.dst,
                                attr="status", old=rel.status, new=status)
                    cs.rels_changed.append(RelState(rel.id, rel.type, rel.src, rel.dst, rel.attrs, status,
                                                    rel.created_at, self.at))
