"""The health rules: each asks the store one aggregate question and turns the answer into findings.

A finding names its rule, its dimension (completeness, correctness, staleness), the class, the
exact number of CIs it concerns and those CIs (for attribute gaps the first ``SAMPLE_IDS`` by id),
why it matters and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmdb.health.config import HealthConfig, checked_attributes, concrete
from cmdb.model import Schema
from cmdb.store.base import Conflict, GraphStore, iso
from cmdb.store.health import AttrGap, CIBrief, SourceRuns

DIMENSIONS = ("completeness", "correctness", "staleness")


@dataclass
class Finding:
    rule: str
    dimension: str
    title: str
    cls: str | None
    count: int
    cis: list[CIBrief] = field(default_factory=list)
    why: str = ""
    action: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, max_cis: int | None = None) -> dict[str, Any]:
        shown = self.cis if max_cis is None else self.cis[:max_cis]
        return {"rule": self.rule, "dimension": self.dimension, "title": self.title, "class": self.cls,
                "count": self.count, "cis": [{"id": c.id, "class": c.cls, "name": c.name} for c in shown],
                "cis_shown": len(shown), "why": self.why, "action": self.action, "detail": self.detail}


def completeness(store: GraphStore, schema: Schema, config: HealthConfig,
                 classes: list[str]) -> tuple[list[Finding], list[AttrGap], dict[str, dict[str, int]]]:
    """Attribute gaps of the live ``classes``: findings, every gap (for scoring) and the weights asked."""
    wanted: dict[str, list[str]] = {}
    weights: dict[str, dict[str, int]] = {}
    for cls in classes:
        required, recommended = checked_attributes(schema, config, cls)
        wanted[cls] = required + recommended
        weights[cls] = {**{a: 1 for a in recommended}, **{a: 2 for a in required}}
    gaps = store.attribute_gaps(wanted)
    findings = []
    for gap in gaps:
        if not gap.missing:
            continue
        is_required = weights[gap.cls][gap.attr] == 2
        kind = "required" if is_required else "recommended"
        findings.append(Finding(
            f"missing-{kind}", "completeness",
            f"{gap.missing} {gap.cls} CI(s) lack the {kind} attribute {gap.attr}", gap.cls, gap.missing, gap.sample,
            why=("the schema requires it: the CI could not be created like this today" if is_required else
                 "reports, impact notices and audits need it (cmdb/schema/health.yaml recommends it)"),
            action=f"have a source report {gap.attr}, or set it in a batch (source: manual) for these CIs",
            detail={"attribute": gap.attr, "required": is_required}))
    return findings, gaps, weights


def duplicates(store: GraphStore, schema: Schema, config: HealthConfig, classes: list[str],
               recorded: list[Conflict] | None = None) -> list[Finding]:
    """Devices sharing a hostname; CIs of one class sharing a name (unless a hostname group says it).

    CIs someone decided are distinct (a conflict resolved ``keep_separate`` naming them all) are not
    suspected again."""
    kept_apart = [frozenset(c.ci_ids) for c in recorded or []
                  if getattr(c, "resolution", None) in ("keep_separate", "keep-separate")]

    def settled(cis: list[CIBrief]) -> bool:
        ids = {c.id for c in cis}
        return any(ids <= kept for kept in kept_apart)

    findings = []
    host_group: dict[str, frozenset[str]] = {}
    host_classes = [c for c in concrete(schema, config.hostname_classes) if c in classes]
    if host_classes:
        for g in store.duplicate_groups(host_classes, "hostname"):
            if settled(g.cis):
                continue
            members = frozenset(c.id for c in g.cis)
            host_group.update((i, members) for i in members)
            findings.append(Finding(
                "duplicate-hostname", "correctness",
                f"{len(g.cis)} devices share the hostname {g.value!r} and no identity key",
                _one_class(g.cis), len(g.cis), g.cis,
                why="no key tied them together, so the CMDB keeps them apart: two boxes with one name, or one box"
                    " seen twice",
                action="if they are one box: cmdb ci merge KEEP DUPLICATE; if not, give one of them its real"
                       " hostname",
                detail={"hostname": g.value}))
    skip = set(concrete(schema, config.name_skip))
    named = [c for c in classes if c not in skip]
    for g in store.duplicate_groups(named) if named else []:
        if settled(g.cis):
            continue
        ids = frozenset(c.id for c in g.cis)
        first = host_group.get(g.cis[0].id)
        if first is not None and ids <= first:
            continue  # said already: devices are named after their hostname
        cls = g.cis[0].cls
        findings.append(Finding(
            "duplicate-name", "correctness", f"{len(g.cis)} {cls} CIs share the name {g.value!r}", cls,
            len(g.cis), g.cis,
            why="people and reports find CIs by name; two of one class with one name are usually one thing"
                " recorded twice",
            action="merge them (cmdb ci merge KEEP DUPLICATE) or rename the one that is different",
            detail={"name": g.value}))
    return findings


def _one_class(cis: list[CIBrief]) -> str | None:
    found = {c.cls for c in cis}
    return found.pop() if len(found) == 1 else None


def conflicts(store: GraphStore, recorded: list[Conflict]) -> list[Finding]:
    """Open identity conflicts: batch items whose keys pointed at two or more CIs."""
    # Open ones only: a resolved conflict (``cmdb conflicts resolve``) is settled, a closed one (ageing) is gone.
    recorded = [c for c in recorded if c.state == "open"]
    briefs = store.get_cis_brief({i for c in recorded for i in c.ci_ids})
    findings = []
    for c in recorded:
        cis = [CIBrief(i, briefs[i].cls, briefs[i].name) for i in c.ci_ids if i in briefs]
        keys = ", ".join(f"{k}" for k in sorted(c.keys))
        findings.append(Finding(
            "open-conflict", "correctness",
            f"conflict {c.id}: a {c.item_class} from {c.source} matched {len(c.ci_ids)} CIs through {keys}",
            _one_class(cis), len(cis), cis,
            why="the item was not written: its identity keys name several CIs, so the CMDB cannot tell which",
            action=f"cmdb conflicts resolve {c.id} --merge if the CIs are one box, --keep-separate if not",
            detail={"conflict": c.id, "source": c.source, "run_id": c.run_id, "at": c.at, "keys": c.keys}))
    return findings


def relationship_rules(store: GraphStore, schema: Schema, config: HealthConfig, classes: list[str]) -> list[Finding]:
    findings = []
    for rule in config.rules:
        targets = [c for c in concrete(schema, rule.classes) if c in classes]
        if not targets:
            continue
        by_class: dict[str, list[CIBrief]] = {}
        for ci in store.cis_lacking(targets, rule.lacks):
            by_class.setdefault(ci.cls, []).append(ci)
        for cls, cis in sorted(by_class.items()):
            findings.append(Finding(rule.id, "correctness", f"{len(cis)} {cls} CI(s) {rule.title}", cls, len(cis),
                                    cis, why=rule.why, action=rule.action))
    return findings


def staleness(store: GraphStore, config: HealthConfig, now: datetime, sources: list[SourceRuns]) -> list[Finding]:
    """Sources without a recent complete run; CIs lifecycle marked stale; CIs nobody saw for N days."""
    days = config.stale_after_days
    horizon = iso(now - timedelta(days=days))
    findings = []
    for s in sources:
        scope = s.scope if s.scope is not None else "(no scope)"
        # A source that never claims completeness (a manual record, an API push) is judged by its last
        # run; one that does, by its last complete run: only those age out what disappeared.
        if (s.last_complete or s.last_run) < horizon:
            last = f"last complete run {s.last_complete}" if s.last_complete else "never a complete run"
            findings.append(Finding(
                "source-not-complete", "staleness",
                f"source {s.source} over {scope}: {last} ({s.runs} run(s), last {s.last_run})", None, 0,
                why=f"only a complete run ages out what disappeared; without one in {days} days, CIs gone from"
                    " this scope still look alive",
                action=f"run {s.source} over {scope} completely (complete: true), or retire the scope's CIs",
                detail={"source": s.source, "scope": s.scope, "runs": s.runs, "last_run": s.last_run,
                        "last_complete": s.last_complete}))
    stale: dict[str, list[CIBrief]] = {}
    unseen: dict[str, list[CIBrief]] = {}
    for row in store.ci_freshness(horizon):
        brief = CIBrief(row.id, row.cls, row.name)
        (stale if row.status == "stale" else unseen).setdefault(row.cls, []).append(brief)
    for cls, cis in sorted(stale.items()):
        findings.append(Finding(
            "stale", "staleness", f"{len(cis)} {cls} CI(s) are stale: their sources stopped seeing them", cls,
            len(cis), cis, why="complete runs of every source that knew them no longer report them",
            action="check whether they still exist; retire them, or fix the discovery that lost them"))
    for cls, cis in sorted(unseen.items()):
        findings.append(Finding(
            "not-seen", "staleness", f"{len(cis)} {cls} CI(s) not seen by any source for {days} days", cls,
            len(cis), cis, why="nothing confirms they still exist or that their attributes are still true",
            action="run discovery over them or have their owner confirm them (a manual batch); retire the gone",
            detail={"days": days}))
    return findings
