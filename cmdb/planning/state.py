"""What every part of the planner shares: the batch, the clock, the result, and small helpers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cmdb.batch import Batch, IdentityRef, RelRecord
from cmdb.errors import BadInputError, CmdbError
from cmdb.identity import ItemGroup
from cmdb.model import Schema
from cmdb.partitions import assign_partitions
from cmdb.reconcile import MANUAL_SOURCES, ReconcileConfig, freshness_horizon
from cmdb.store.base import (
    STATUS_RANK,
    ChangeSet,
    Conflict,
    Event,
    Sighting,
    iso,
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
    # What ageing and merging did (``count_outcomes``): keys retired, values dropped, CIs merged away,
    # recorded conflicts closed.
    keys_retired: int = 0
    attrs_dropped: int = 0
    rel_attrs_dropped: int = 0
    merged: int = 0
    conflicts_closed: int = 0

    def summary(self) -> dict[str, int]:
        """The counts a batch reports (``cmdb load``, ``POST /batches``, the run ledger); keys are only added."""
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
            "keys_retired": self.keys_retired,
            "attrs_dropped": self.attrs_dropped,
            "rel_attrs_dropped": self.rel_attrs_dropped,
            "merged": self.merged,
            "conflicts_closed": self.conflicts_closed,
        }

    def count_outcomes(self, cs: ChangeSet) -> None:
        """The counts read off a batch's ChangeSet: identity keys retired by ageing (``ci.key.retired``),
        CI and relationship attribute values dropped (``ci.attr.dropped``, ``rel.attr.dropped``), CIs
        merged into another (``ci.merged``) and recorded conflicts closed (``conflict.closed``)."""
        self.keys_retired = len(cs.keys_retired)
        self.merged = len(cs.merges)
        self.conflicts_closed = len(cs.conflicts_closed)
        dropped = {"ci.attr.dropped": 0, "rel.attr.dropped": 0}
        for e in cs.events:
            if e.kind in dropped:
                dropped[e.kind] += 1
        self.attrs_dropped = dropped["ci.attr.dropped"]
        self.rel_attrs_dropped = dropped["rel.attr.dropped"]


@dataclass
class PreparedRel:
    rec: RelRecord
    attrs: dict[str, Any]
    src_keys: dict[str, str] | None = None
    dst_keys: dict[str, str] | None = None


def new_ci_id() -> str:
    """Time-ordered ids: a batch's new CIs land next to each other in every index keyed by CI id,
    so a commit writes a few sequential pages instead of one random page per CI and index."""
    return f"ci-{time.time_ns():016x}{secrets.token_hex(3)}"


def derive_status(sightings: Iterable[Sighting]) -> str:
    """A manual word is final: any live manual sighting keeps the item active, an explicit manual
    retirement (status retired, ``missed`` 0: a batch's ``retire``, as ``cmdb ci retire`` and
    ``DELETE /cis/{id}`` write) retires it. A manual sighting retired because a complete manual batch no
    longer held the item (``missed`` > 0) withdraws the manual word only: the other sources decide, and
    with none left the item is retired."""
    best = "retired"
    seen_any = False
    manual: str | None = None
    for s in sightings:
        seen_any = True
        if s.source in MANUAL_SOURCES:
            if s.status != "retired":
                manual = "active"
            elif s.missed == 0 and manual is None:
                manual = "retired"
            continue
        if STATUS_RANK[s.status] < STATUS_RANK[best]:
            best = s.status
    if manual is not None:
        return manual
    return best if seen_any else "active"


class PlannerState:
    """The state of one batch's plan; the planning parts (``prepare``, ``cis``, ``rels``, ``lifecycle``)
    are classes on it, assembled in ``cmdb.planning.planner``."""


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
        self.rels: list[PreparedRel] = []
        self.event_count = 0
        self.ref_cache: dict[IdentityRef, dict[str, str]] = {}
        self.new_ids: set[str] = set()  # CIs this plan creates
        # (key, CI id) pairs this plan took from that CI (cmdb.planning.ageing): a look-up must not give them back
        self.released: set[tuple[str, str]] = set()
        self.result = IngestResult(run_id=batch.run_id)

    def fail(self, where: str, msg: str, cause: CmdbError | None = None) -> BadInputError:
        """A BadInputError naming the batch and item; keeps the cause's subclass (UnknownClassError)."""
        kind = type(cause) if isinstance(cause, BadInputError) else BadInputError
        return kind(f"{self.batch.origin}: {where}: {msg}; nothing of this batch was written")

    def event(self, cs: ChangeSet, kind: str, **kw: Any) -> None:
        cs.events.append(
            Event(at=self.at, kind=kind, source=self.batch.source, run_id=self.batch.run_id,
                  actor=self.batch.actor, **kw)
        )

    def sighting(self, existing: Sighting | None) -> Sighting:
        first = existing.first_seen if existing else self.at
        return Sighting(self.batch.source, self.scope, first, self.at, self.batch.run_id, 0, "active")
