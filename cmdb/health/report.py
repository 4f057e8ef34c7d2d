"""``build_report``: the health of the whole estate from a handful of aggregate store queries.

One report asks the store: CI counts per class and status, attribute gaps (one query per class on
SQLite, one in all on Neo4j), duplicate names (one per class) and hostnames, identity conflicts,
one query per relationship rule, the run ledger summary and CI freshness. Nothing is read per CI.
``save`` keeps the scores as a snapshot, so ``cmdb health --trend`` can show them over time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cmdb.errors import BadInputError
from cmdb.health import rules
from cmdb.health.config import HealthConfig
from cmdb.health.scoring import class_scores, overall
from cmdb.model import Schema
from cmdb.store.base import GraphStore, iso
from cmdb.store.health import HealthSnapshot, SourceRuns

SCHEMA_VERSION = 1
ORDER = {"correctness": 0, "completeness": 1, "staleness": 2}


@dataclass
class HealthReport:
    at: str
    stale_after_days: int
    overall: float
    dimensions: dict[str, float]
    classes: dict[str, dict[str, float]]
    findings: list[rules.Finding]
    sources: list[SourceRuns] = field(default_factory=list)
    retired: int = 0
    only_class: str | None = None

    def snapshot(self) -> HealthSnapshot:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.rule] = counts.get(f.rule, 0) + 1
        return HealthSnapshot(self.at, self.overall, dict(self.dimensions), {c: dict(s) for c, s in
                                                                           self.classes.items()}, counts)

    def for_classes(self, classes: set[str], label: str) -> HealthReport:
        """The same report showing only ``classes`` (scores and findings); overall stays the estate's."""
        return HealthReport(self.at, self.stale_after_days, self.overall, self.dimensions,
                            {c: s for c, s in self.classes.items() if c in classes},
                            [f for f in self.findings if f.cls in classes or
                             (f.cls is None and any(ci.cls in classes for ci in f.cis))],
                            self.sources, self.retired, label)

    def as_dict(self, max_cis: int | None = 100) -> dict[str, Any]:
        """The ``--json`` / API shape: findings are the ``items`` (one page: ``next`` is null)."""
        return {
            "schema_version": SCHEMA_VERSION, "at": self.at, "class": self.only_class,
            "overall": self.overall, "dimensions": self.dimensions, "stale_after_days": self.stale_after_days,
            "classes": [{"class": c, **s} for c, s in self.classes.items()],
            "sources": [{"source": s.source, "scope": s.scope, "runs": s.runs, "last_run": s.last_run,
                         "last_complete": s.last_complete} for s in self.sources],
            "retired_cis": self.retired,
            "items": [f.as_dict(max_cis) for f in self.findings], "total": len(self.findings), "next": None,
        }


def build_report(store: GraphStore, schema: Schema, config: HealthConfig, *,
                 now: datetime | None = None) -> HealthReport:
    now = now or datetime.now(UTC)
    counts = store.class_status_counts()
    live = {c: sum(n for s, n in by.items() if s != "retired") for c, by in counts.items()}
    live = {c: n for c, n in live.items() if n > 0 and c in schema.classes}
    classes = sorted(live)
    found, gaps, weights = rules.completeness(store, schema, config, classes)
    recorded = store.conflicts("all")  # open ones are findings; kept-separate ones settle duplicates
    found += rules.duplicates(store, schema, config, classes, recorded)
    found += rules.conflicts(store, recorded)
    found += rules.relationship_rules(store, schema, config, classes)
    sources = store.source_runs()
    found += rules.staleness(store, config, now, sources)
    found.sort(key=lambda f: (ORDER[f.dimension], -f.count, f.rule, f.cls or "", f.title))
    scores = class_scores(live, gaps, weights, found)
    total, dims = overall(scores)
    retired = sum(by.get("retired", 0) for by in counts.values())
    return HealthReport(iso(now), config.stale_after_days, total, dims, scores, found, sources, retired)


def check_class(schema: Schema, cls: str) -> None:
    """A ``--class`` / ``?class=`` value names a class of the schema (abstract ones too: Host, Device)."""
    if cls not in schema.classes:
        raise BadInputError(f"unknown CI class {cls!r}; known classes: {', '.join(sorted(schema.classes))}")


def filter_class(report: HealthReport, schema: Schema, cls: str) -> HealthReport:
    """The report for ``--class``: that class and its subclasses."""
    check_class(schema, cls)
    return report.for_classes(set(schema.descendants(cls)), cls)
