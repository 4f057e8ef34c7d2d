"""Retiring a CI by hand: the ``manual`` source declares it gone, with its relationships.

Discovery never deletes and lifecycle retires only what complete runs stopped seeing; an operator
retiring a decommissioned box is the one explicit retirement. It is written like any batch (one
transaction, a run-ledger entry, ``ci.status`` / ``rel.status`` history events with the actor), and
a retired ``manual`` sighting keeps the CI retired until a manual edit sees it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from cmdb.errors import NotFoundError
from cmdb.store.base import (
    BatchReader,
    ChangeSet,
    CIState,
    Event,
    GraphStore,
    RunRecord,
    Sighting,
    SightingWrite,
    iso,
)

SOURCE = "manual"
SCOPE = "-"


def retire_ci(store: GraphStore, ci_id: str, *, actor: str | None = None, now: datetime | None = None,
              guard: Callable[[CIState], None] | None = None) -> CIState:
    """Retire ``ci_id`` and its relationships; ``guard`` may refuse (raise) on the state read in the
    write transaction (an HTTP If-Match). Returns the retired state."""
    at = iso(now or datetime.now(UTC))
    run_id = f"manual-retire-{uuid.uuid4().hex[:12]}"
    rel_ids = [r.id for r in store.relationships(ci_id, include_retired=False, limit=100_000)]
    out: list[CIState] = []

    def plan(reader: BatchReader) -> ChangeSet:
        out.clear()
        cs = ChangeSet(run=RunRecord(run_id, SOURCE, SCOPE, False, at, at, actor))
        state = reader.load_cis([ci_id]).get(ci_id)
        if state is None:
            raise NotFoundError(f"no CI {ci_id}")
        if guard is not None:
            guard(state)
        old = state.sightings.get((SOURCE, SCOPE))
        sighting = Sighting(SOURCE, SCOPE, old.first_seen if old else at, at, run_id, 0, "retired")
        sightings = {**state.sightings, (SOURCE, SCOPE): sighting}
        cs.sightings.append(SightingWrite("ci", ci_id, sighting))
        events = 0
        if state.status != "retired":
            cs.events.append(Event(at, "ci.status", SOURCE, run_id, ci_id=ci_id, attr="status", old=state.status,
                                   new="retired", actor=actor))
            events += 1
        retired = replace(state, status="retired", updated_at=at if state.status != "retired" else state.updated_at,
                          sightings=sightings)
        cs.cis_changed.append(retired)
        for rel in reader.load_rels_by_id(rel_ids).values():
            if rel.status == "retired":
                continue
            cs.rels_changed.append(replace(rel, status="retired", updated_at=at))
            cs.events.append(Event(at, "rel.status", SOURCE, run_id, ci_id=rel.src, rel_id=rel.id, peer_id=rel.dst,
                                   attr=rel.type, old=rel.status, new="retired", actor=actor))
            events += 1
        cs.run.stats = {"created": 0, "updated": 1 if state.status != "retired" else 0,
                        "unchanged": 0 if state.status != "retired" else 1, "rels_created": 0,
                        "rels_updated": len(cs.rels_changed), "events": events, "stale": 0, "retired": 1,
                        "conflicts": 0}
        out.append(retired)
        return cs

    store.write_batch(plan)
    return out[0]
