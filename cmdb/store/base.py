"""The GraphStore protocol and the records that cross it.

A store is deliberately dumb: it keeps CIs, relationships, provenance, sightings, history, runs
and conflicts, and answers narrow queries. Identification, reconciliation and lifecycle rules live
in the core (``cmdb.ingest``), so every store behaves the same; the contract suite in
``tests/contract`` holds each store to that.

Writing goes through ``write_batch(plan)``: the store opens one write transaction, hands ``plan`` a
``BatchReader`` for the few bulk look-ups a batch needs, and applies the ``ChangeSet`` that ``plan``
returns in that same transaction. Either all of it lands or none of it does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from cmdb.store.health import HealthStore
from cmdb.store.jobs import JobStore
from cmdb.store.merges import CIMerge, ConflictResolution
from cmdb.store.retention import RetentionStore
from cmdb.store.schema_ext import SchemaExtensionStore
from cmdb.store.tasks import TaskStore

Direction = Literal["out", "in", "both"]
Status = Literal["active", "stale", "retired"]
STATUS_RANK: dict[str, int] = {"active": 0, "stale": 1, "retired": 2}


def iso(dt: datetime) -> str:
    """Fixed-width UTC timestamp: sorts as text in every store."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rel_id_for(rtype: str, src: str, dst: str) -> str:
    """Relationship ids are derived from their ends, so a re-run can never duplicate one and every
    store can find a relationship by (type, src, dst) through its primary key."""
    return "rel-" + hashlib.sha1(f"{rtype}|{src}|{dst}".encode()).hexdigest()[:20]


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class AttrValue:
    """One source's value of one attribute: the provenance of a value and its alternatives."""

    source: str
    value: Any
    run_id: str
    set_at: str


@dataclass
class Sighting:
    """When a source last saw a CI or relationship, in which scope, and its lifecycle there."""

    source: str
    scope: str
    first_seen: str
    last_seen: str
    last_run: str
    missed: int = 0
    status: str = "active"


@dataclass
class CIState:
    id: str
    cls: str
    name: str | None
    status: str
    attrs: dict[str, Any]
    created_at: str
    updated_at: str
    provenance: dict[str, dict[str, AttrValue]] = field(default_factory=dict)
    sightings: dict[tuple[str, str], Sighting] = field(default_factory=dict)


@dataclass
class RelState:
    id: str
    type: str
    src: str
    dst: str
    attrs: dict[str, Any]
    status: str
    created_at: str
    updated_at: str
    sightings: dict[tuple[str, str], Sighting] = field(default_factory=dict)
    provenance: dict[str, dict[str, AttrValue]] | None = None
    """Each source's value of each attribute (``cmdb.planning.rel_attrs``); None when not read (a
    store writing a change with None leaves the stored provenance as it is)."""


@dataclass
class Event:
    """One change in history. Relationship events carry both ends (``ci_id`` and ``peer_id``)."""

    at: str
    kind: str
    source: str
    run_id: str | None
    ci_id: str | None = None
    rel_id: str | None = None
    peer_id: str | None = None
    attr: str | None = None
    old: Any = None
    new: Any = None
    actor: str | None = None
    seq: int | None = None


@dataclass
class Conflict:
    """An identity conflict: a batch item whose keys tie CIs whose identity values disagree (not written),
    or whose value or class claim contradicts the one CI it matched (written; ``item`` says which)."""

    id: str
    at: str
    source: str
    run_id: str
    item: str
    item_class: str
    keys: dict[str, str]
    ci_ids: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    resolution: str | None = None  # None until resolved; "merged" or "keep_separate" (cmdb.store.merges)
    resolved_at: str | None = None
    resolved_by: str | None = None
    closed_at: str | None = None  # closed by ageing (cmdb.store.conflicts): when, which run, whose batch, why
    closed_run: str | None = None
    closed_by: str | None = None
    closed_reason: str | None = None

    @property
    def state(self) -> str:
        """``open``, ``closed`` (by ageing) or ``resolved`` (``resolution`` says how)."""
        return "resolved" if self.resolution is not None else "closed" if self.closed_at is not None else "open"


@dataclass
class RunRecord:
    """One run of one source over a scope, in the run ledger."""

    run_id: str
    source: str
    scope: str | None
    complete: bool
    started_at: str
    ended_at: str
    actor: str | None = None
    stats: dict[str, int] = field(default_factory=dict)


@dataclass
class DiscoveryRunRecord:
    """One discovery run: who ran which method over which targets, and each target's outcome.

    ``outcomes`` holds one dict per target (target, outcome, detail, profile, items, seconds); the
    ingest ledger (``runs``) holds the batches the run wrote, with run ids ``<run_id>/<n>``.
    Never holds a secret: profiles are referenced by name.
    """

    run_id: str
    method: str
    started_at: str
    ended_at: str | None = None
    actor: str | None = None
    targets: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o["outcome"]] = out.get(o["outcome"], 0) + 1
        return out


@dataclass
class SightingWrite:
    kind: Literal["ci", "rel"]
    item_id: str
    sighting: Sighting


@dataclass
class ChangeSet:
    """Everything one batch writes; applied by a store in one transaction.

    CIs in ``cis_new`` and ``cis_changed`` are whole rows: class, name, status, resolved attributes
    and the full provenance map are written together (a CI's provenance is stored with it, not as
    one row per attribute). Sightings are written separately because lifecycle queries them by
    source and scope.
    """

    run: RunRecord
    cis_new: list[CIState] = field(default_factory=list)
    cis_changed: list[CIState] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)
    sightings: list[SightingWrite] = field(default_factory=list)
    rels_new: list[RelState] = field(default_factory=list)
    rels_changed: list[RelState] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    keys_retired: list[tuple[str, str]] = field(default_factory=list)
    """(key, CI id) pairs that no longer identify that CI (``cmdb.planning.ageing``); removed before
    ``keys`` are added, so a key can move to another CI in one batch."""
    conflicts_closed: list[str] = field(default_factory=list)
    """Ids of recorded conflicts whose cause this batch retired (kept, closed: ``cmdb.store.conflicts``)."""
    conflicts_closed_why: dict[str, str] = field(default_factory=dict)  # conflict id -> the keys retired
    merges: list[CIMerge] = field(default_factory=list)  # applied last (cmdb.store.merges)


@dataclass
class SearchQuery:
    classes: list[str] | None = None
    status: str | None = None
    text: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    limit: int = 50
    offset: int = 0
    after: tuple[str, str, str] | None = None
    """Keyset paging: only CIs sorting after this (class, lower-case name or "", id), the order of every
    page; ``Page.total`` still counts every match."""


def sort_key(ci: CIState) -> tuple[str, str, str]:
    """Where a CI sorts in search pages (``SearchQuery.after``)."""
    return ci.cls, (ci.name or "").lower(), ci.id


@dataclass
class Page:
    items: list[CIState]
    total: int
    limit: int
    offset: int


@dataclass
class IdempotencyRecord:
    """One ``Idempotency-Key`` of a batch POST (``cmdb.store.idempotency``; the record lives here so
    ``GraphStore`` can name it). Kept until pruned (``cmdb.store.retention``)."""

    key: str
    fingerprint: str
    run_id: str
    stats: dict[str, int] = field(default_factory=dict)
    created_at: str = ""

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.stats}



class BatchReader(Protocol):
    """The look-ups a batch plan makes inside the store's write transaction, each one round trip."""

    def match_keys(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, CIState]]:
        """Which CI each known key belongs to, and the full state of those CIs."""

    def resolve_keys(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Key -> (CI id, class) for relationship ends: no state is loaded."""

    def load_cis(self, ids: Iterable[str]) -> dict[str, CIState]: ...

    def load_rels(self, triples: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], RelState]:
        """Relationships by (type, src, dst)."""

    def scopes(self, source: str) -> list[str]:
        """Scopes this source has sightings in (for lifecycle coverage)."""

    def sightings_in(
        self, source: str, scopes: list[str]
    ) -> tuple[list[tuple[str, Sighting]], list[tuple[str, Sighting]]]:
        """(ci_id, sighting) and (rel_id, sighting) pairs of ``source`` in ``scopes``."""

    def load_rels_by_id(self, ids: Iterable[str]) -> dict[str, RelState]: ...

    def run_scopes(self, run_ids: Iterable[str]) -> dict[str, str | None]:
        """The scope of each run in the ledger (runs not found are left out): which complete run
        covers the run that set a value (``cmdb.planning.ageing``)."""

    def rels_touching(self, ci_ids: Iterable[str]) -> list[RelState]:
        """Every relationship (any status, with sightings) with an end in ``ci_ids``: what a merge moves."""

    def kept_separate(self, ci_ids: Iterable[str]) -> list[list[str]]:
        """The CI lists of conflicts resolved as kept separate that name any of ``ci_ids``."""


    def open_conflicts(self, keys: Iterable[str]) -> list[Conflict]:
        """Open recorded conflicts (neither closed nor resolved) that name any of ``keys``."""


class GraphStore(TaskStore, SchemaExtensionStore, HealthStore, JobStore, RetentionStore, Protocol):
    """What every store implements; see the module docstring for the write path."""

    url: str

    def write_batch(self, plan: Callable[[BatchReader], ChangeSet]) -> ChangeSet: ...

    def plan_read_only(self, plan: Callable[[BatchReader], ChangeSet]) -> ChangeSet:
        """Run ``plan`` with the reader ``write_batch`` gives it, over one consistent read-only view, and
        return its ChangeSet unapplied: no write lock, nothing written (a dry run, ``cmdb.dryrun``)."""

    def get_ci(self, ci_id: str) -> CIState | None: ...

    def get_cis(self, ids: Iterable[str]) -> dict[str, CIState]: ...

    def get_cis_brief(self, ids: Iterable[str]) -> dict[str, CIState]:
        """CIs with class, name, status, attributes and times but empty provenance and sightings: for
        bulk reads that need neither (an idle expiry cycle decoded provenance for a third of its time)."""

    def ci_labels(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """CI id -> (class, display name: the name, else the id) of the stored ``ids`` (retired too): what
        an impact answer prints for every CI it lists, without decoding attributes (a 100k-CI index names
        all its CIs in 0.2 s this way; ``get_cis_brief`` took 1.6 s and 240 MB)."""

    def find_by_name(self, name: str) -> list[str]:
        """CI ids whose display name equals ``name`` (case-insensitive)."""

    def find_by_key(self, key: str) -> str | None: ...

    def search(self, query: SearchQuery) -> Page: ...

    def relationships(
        self,
        ci_id: str | None = None,
        type: str | None = None,
        direction: Direction = "both",
        include_retired: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[RelState]: ...

    def get_rels(self, ids: Iterable[str]) -> dict[str, RelState]:
        """Relationships by id (any status) with their sightings and per-source provenance ({} when a
        relationship has none); ids not stored are left out (``cmdb.rel_provenance``)."""

    def neighbors(
        self, ids: Iterable[str], types: Iterable[str] | None = None, direction: Direction = "out"
    ) -> list[RelState]:
        """Frontier expansion: non-retired edges leaving (out), entering (in) or touching ``ids``."""

    def events(
        self,
        ci_ids: Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """History in time order; with ``ci_ids``, events of those CIs and of their relationships."""

    def recent_events(
        self, ci_ids: Iterable[str], since: str | None = None, until: str | None = None, limit: int = 50
    ) -> list[Event]:
        """The newest ``limit`` events of ``events(ci_ids, since, until)``, newest first, without reading
        the rest (an incident's recent changes among 20,000 affected CIs)."""

    def conflicts(self, state: str = "open") -> list[Conflict]:
        """Identity conflicts in ``state`` (open, closed, resolved or all; ``cmdb.store.conflicts``), oldest
        first; an unknown state is a BadInputError."""

    # -- merges and conflict resolutions (cmdb.store.merges) --------------------------------------
    def conflict(self, conflict_id: str) -> Conflict | None:
        """One conflict in any state, with its resolution or closure."""

    def resolve_conflict(self, resolution: ConflictResolution) -> None:
        """Record how a conflict was resolved; NotFoundError when no conflict has that id."""

    def resolve_alias(self, ci_id: str) -> str | None:
        """The CI a merged-away id now is, or None when ``ci_id`` is no alias (``get_ci`` follows it)."""

    def aliases_of(self, ci_id: str) -> list[str]:
        """Ids of the CIs merged into ``ci_id``, sorted."""

    def runs(self, source: str | None = None, limit: int = 100) -> list[RunRecord]: ...

    def save_discovery_run(self, run: DiscoveryRunRecord) -> None:
        """Insert or replace one discovery run record (its own small transaction)."""

    def discovery_runs(self, method: str | None = None, limit: int = 100) -> list[DiscoveryRunRecord]:
        """Newest first."""

    def get_discovery_run(self, run_id: str) -> DiscoveryRunRecord | None: ...

    def stats(self) -> dict[str, Any]: ...

    def dump(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every record of the store as (kind, row), for export and migration."""

    def restore(self, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Load a dump into an empty store; a failure leaves it empty (SQLite: one transaction;
        Neo4j: chunked transactions, cleared on failure)."""

    def clear(self) -> None:
        """Delete everything the store holds."""

    def write_counter(self) -> int:
        """A number that changes whenever a batch (or a clear or restore) is written, in this process or
        any other: caches of the graph (the API's impact index) compare it to know when to refresh.
        Compare for equality only; cheap enough to ask on every request."""

    def write_batch_once(self, key: str, fingerprint: str, plan: Callable[[BatchReader], ChangeSet],
                         at: str) -> tuple[ChangeSet | None, IdempotencyRecord]:
        """Idempotent ``write_batch``; see ``cmdb.store.idempotency``."""

    def idempotency_record(self, key: str) -> IdempotencyRecord | None: ...

    def close(self) -> None: ...
