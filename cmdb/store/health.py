"""The health capability of a store: the few aggregate questions a health report asks, and its snapshots.

``cmdb.health`` decides what is healthy; a store only answers set-wise questions over the whole
estate, each one query (or one per class list), never one per CI: how many CIs of each class lack
an attribute, which CIs share a name or a hostname, which CIs lack a kind of relationship, when
each source last ran, which CIs no source has seen lately. Retired CIs and relationships take no
part: they are history, not the estate. Snapshots are the report's scores, kept so a trend can be
shown; they are derived data (not part of a dump).

Contract: ``tests/contract/test_health_contract.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

EdgeDirection = Literal["out", "in", "both"]
SAMPLE_IDS = 50
"""How many CI ids an attribute gap carries (its count is always exact)."""


@dataclass(frozen=True)
class CIBrief:
    """Enough of a CI to name it in a finding."""

    id: str
    cls: str
    name: str | None


@dataclass(frozen=True)
class EdgeRule:
    """Relationships a CI should have: of ``types`` (None: any type) in ``direction`` from the CI."""

    types: tuple[str, ...] | None
    direction: EdgeDirection = "both"


@dataclass
class AttrGap:
    """CIs of one class whose attribute is absent, null, an empty string, list or mapping."""

    cls: str
    attr: str
    missing: int
    sample: list[CIBrief] = field(default_factory=list)


@dataclass
class DuplicateGroup:
    """Live CIs sharing one value (case-insensitive) of a name or an attribute: suspected duplicates."""

    value: str
    cis: list[CIBrief]


@dataclass
class SourceRuns:
    """One source's runs over one scope (None: no scope) in the run ledger."""

    source: str
    scope: str | None
    runs: int
    last_run: str
    last_complete: str | None


@dataclass
class FreshnessRow:
    """A live CI that lifecycle marked stale, or that no source has seen since a given time."""

    id: str
    cls: str
    name: str | None
    status: str
    last_seen: str | None  # the latest sighting by any source; None: never seen by one


@dataclass
class HealthSnapshot:
    """The scores of one health run: overall, per dimension, per class, and the count of each rule."""

    at: str
    overall: float
    dimensions: dict[str, float]
    classes: dict[str, dict[str, float]]
    findings: dict[str, int]
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "overall": self.overall, "dimensions": self.dimensions, "classes": self.classes,
                "findings": self.findings}


class HealthStore(Protocol):
    """The health questions every store answers (see the module docstring)."""

    def class_status_counts(self) -> dict[str, dict[str, int]]:
        """class -> status -> number of CIs (retired ones included, so a report can say so)."""

    def attribute_gaps(self, wanted: Mapping[str, Sequence[str]], sample: int = SAMPLE_IDS) -> list[AttrGap]:
        """For each class and each of its ``wanted`` attributes, the live CIs lacking it (a gap per pair,
        zero counts included), in the order asked; ``sample`` ids of each, by id."""

    def duplicate_groups(self, classes: Sequence[str], attr: str | None = None) -> list[DuplicateGroup]:
        """Live CIs sharing a lower-cased display name within one class (``attr`` None), or a string
        attribute across ``classes``: groups of two or more, by value (then class); members by id."""

    def cis_lacking(self, classes: Sequence[str], rules: Sequence[EdgeRule]) -> list[CIBrief]:
        """Live CIs of ``classes`` that have, for every rule, no live relationship matching it; by id."""

    def source_runs(self) -> list[SourceRuns]:
        """Per (source, scope) of the run ledger: runs, the last run's end, the last complete run's end."""

    def ci_freshness(self, seen_before: str) -> list[FreshnessRow]:
        """Live CIs that are ``stale``, or whose latest sighting ended before ``seen_before``; by id."""

    def save_health_snapshot(self, snapshot: HealthSnapshot) -> None:
        """Append one snapshot (its own small transaction)."""

    def health_snapshots(self, limit: int = 50) -> list[HealthSnapshot]:
        """The latest ``limit`` snapshots, oldest first."""
