"""Change analysis: what a change puts at risk, how risky it is and why, and who must approve it.

The blast radius of a change is its worst case: the changed CIs down. Risk is scored from reasons an
approver can check (tier-1 services that would go down, redundancy groups left without a spare,
how many services are touched, the change type, a window outside the CIs' maintenance windows).
Conflicts and history come from the minimal records of ``impact.records``: other active changes on
the same CIs or inside the blast radius in an overlapping window, freeze periods, and failed changes
or incidents on the changed CIs in the last ``RECENT_DAYS`` days.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cmdb.errors import BadInputError
from cmdb.history import resolve_ci
from cmdb.model import Schema
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore, iso, parse_iso
from impact.engine import AffectedService, BlastRadius, blast_radius
from impact.maintenance import within_window
from impact.records import ACTIVE_CHANGE_STATES, freeze_periods, overlaps, records_on
from impact.source import ImpactSource, StoreSource
from impact.stakeholders import Stakeholder, gather_stakeholders
from impact.states import State

CHANGE_TYPES = ("standard", "normal", "emergency")
RECENT_DAYS = 30
@dataclass
class ChangeReport:
    cis: list[str]
    start: str
    end: str
    change_type: str
    radius: BlastRadius
    services: list[AffectedService]
    risk: str
    score: int
    reasons: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    approvers: list[Stakeholder] = field(default_factory=list)
    stakeholders: list[Stakeholder] = field(default_factory=list)


def analyse_change(
    store: GraphStore,
    refs: Sequence[str],
    start: str,
    end: str,
    change_type: str = "normal",
    schema: Schema | None = None,
    source: ImpactSource | None = None,
    key: str | None = None,
) -> ChangeReport:
    """Blast radius, risk with reasons, conflicts and approvers of a change to ``refs``.

    ``key`` names the change's own record (if it is stored already) so it does not conflict with itself.
    """
    if change_type not in CHANGE_TYPES:
        raise BadInputError(f"change type {change_type!r}: use one of {', '.join(CHANGE_TYPES)}")
    t0, t1 = parse_iso(start), parse_iso(end)
    if t1 <= t0:
        raise BadInputError(f"the change window ends ({end}) before it starts ({start})")
    schema = schema or store_schema(store)
    source = source or StoreSource(store, schema)
    cis = [resolve_ci(store, schema, r) for r in refs]
    radius = blast_radius(source, {c: State.DOWN for c in cis})
    services = radius.services()
    score, reasons = 0, []
    down = [s for s in services if s.state == State.DOWN]
    for s in down:
        weight = {1: 3, 2: 2}.get(s.tier or 99, 1)
        score = max(score, weight)
        reasons.append(f"tier-{s.tier} service {s.name} would be down ({' -> '.join(s.path)})")
    spare_less = []
    for g, info in sorted(radius.groups.items()):
        alive = sum(1 for m in info.members if radius.states.get(m, State.OK) < State.DOWN)
        if radius.states.get(g) == State.DEGRADED and alive == info.required:
            spare_less.append(g)
    names = source.describe(spare_less + cis)
    if spare_less:
        score += 1
        reasons.append("no redundancy left during the change in " + ", ".join(
            f"{names[g].name} ({radius.groups[g].required} of {len(radius.groups[g].members)} needed)"
            for g in spare_less))
    if len(services) >= 5:
        score += 1
        reasons.append(f"{len(services)} services affected")
    if change_type == "emergency":
        score += 1
        reasons.append("emergency change: less time to test and review")
    if change_type == "standard" and any(s.tier == 1 for s in services):
        score += 1
        reasons.append("a standard (pre-approved) change should not put a tier-1 service at risk")
    conflicts = []
    for c in cis:
        window = names[c].attrs.get("maintenance_window") if c in names else None
        if not window:
            continue
        try:
            inside = within_window(str(window), t0, t1)
        except BadInputError as exc:
            conflicts.append(f"{names[c].name}: {exc}")
            continue
        if not inside:
            conflicts.append(f"{names[c].name}: the window {start} - {end} is outside its maintenance window "
                             f"({window})")
    if conflicts:
        score += 1
        reasons.append("outside the maintenance window of " + ", ".join(x.split(":")[0] for x in conflicts))
    # Other changes conflict when they touch a CI at risk or a redundancy partner of one (the other
    # member of an HA pair): together they may take down what each alone only degrades.
    at_risk = set(radius.states) | {m for g in radius.groups.values() for m in g.members}
    others = [r for r in records_on(store, at_risk, "Change")
              if r.key != key and r.state in ACTIVE_CHANGE_STATES and overlaps(start, end, r.start, r.end)]
    alone = {s.id for s in down}
    for r in others:
        other_names = source.describe(r.ci_ids)
        touched = ", ".join(sorted(other_names[c].name if c in other_names else c for c in r.ci_ids))
        where = "the same CIs" if set(r.ci_ids) & set(cis) else "CIs at risk or their redundancy partners"
        conflicts.append(f"change {r.key} ({r.state}, {r.start} - {r.end}) touches {where}: {touched}")
        both = blast_radius(source, {c: State.DOWN for c in (*cis, *r.ci_ids)}).services()
        worse = [s for s in both if s.state == State.DOWN and s.id not in alone]
        score += 2 if worse else 1
        reasons.append(f"overlaps change {r.key}" + (
            "; together they would take down " + ", ".join(f"{s.name} (tier {s.tier})" for s in worse) if worse
            else ""))
    for name, f_start, f_end in freeze_periods(store):
        if overlaps(start, end, f_start, f_end):
            conflicts.append(f"freeze period {name} ({f_start} - {f_end})")
            score += 2 if change_type != "emergency" else 0
            reasons.append(f"inside the freeze period {name}")
    since = iso(t0 - timedelta(days=RECENT_DAYS))
    for r in records_on(store, cis):
        if r.key == key or not r.start or not overlaps(since, start, r.start, r.end or r.start):
            continue
        if r.cls == "Change" and r.state == "failed":
            score += 1
            reasons.append(f"change {r.key} on the same CIs failed within {RECENT_DAYS} days")
        elif r.cls == "Incident":
            score += 1
            reasons.append(f"incident {r.key} on the same CIs within {RECENT_DAYS} days")
    risk = "high" if score >= 4 else "medium" if score >= 2 else "low"
    people = gather_stakeholders(store, radius)
    approvers = [p for p in people if "change_approver" in p.roles]
    return ChangeReport(cis, start, end, change_type, radius, services, risk, score, reasons, conflicts, approvers,
                        people)


def change_dict(rep: ChangeReport) -> dict[str, Any]:
    names = rep.radius.source.describe(rep.cis)
    return {
        "cis": [{"id": c, "name": names[c].name if c in names else c} for c in rep.cis],
        "start": rep.start, "end": rep.end, "type": rep.change_type,
        "risk": rep.risk, "score": rep.score, "reasons": rep.reasons, "conflicts": rep.conflicts,
        "services": [{"name": s.name, "tier": s.tier, "worst_case": s.state.label, "path": list(s.path)}
                     for s in rep.services],
        "affected_count": len(rep.radius.affected),
        "approvers": [{"name": a.name, "contact": a.contact,
                       "for": sorted({r.ci_name for r in a.reasons if r.role == "change_approver"})}
                      for a in rep.approvers],
        "notify": [{"name": p.name, "roles": p.roles, "contact": p.contact} for p in rep.stakeholders],
    }


def hidden_note(d: dict[str, Any]) -> str:
    """What an answer redacted for a partition-limited token left out (``hidden`` counts), or ""."""
    hidden = d.get("hidden") or {}
    if not hidden:
        return ""
    return ("Not shown (outside the partitions of this token; counted, not named): "
            + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in sorted(hidden.items())))


def change_markdown(rep: ChangeReport) -> str:
    return change_doc_markdown(change_dict(rep))


def change_doc_markdown(d: dict[str, Any]) -> str:
    """The Markdown report of a change answer (``change_dict``, possibly redacted)."""
    lines = [f"# Change impact: {', '.join(c['name'] for c in d['cis'])}", "",
             f"- Window: {d['start']} - {d['end']} ({d['type']})",
             f"- Risk: **{d['risk']}** (score {d['score']})", f"- CIs at risk: {d['affected_count']}", ""]
    lines += ["## Why this risk", ""] + [f"- {r}" for r in d["reasons"] or ["nothing above the baseline"]] + [""]
    if d["conflicts"]:
        lines += ["## Conflicts", ""] + [f"- {c}" for c in d["conflicts"]] + [""]
    lines += ["## Services at risk (worst case)", "", "| tier | service | worst case | why |", "|---|---|---|---|"]
    lines += [f"| {s['tier']} | {s['name']} | {s['worst_case']} | {' → '.join(s['path'])} |" for s in d["services"]]
    lines += ["", "## Approvers", ""]
    lines += [f"- {a['name']} ({', '.join(a['for'])}): {', '.join(a['contact'].values())}" for a in d["approvers"]]
    lines += ["", "## Notify", ""]
    lines += [f"- {p['name']} ({', '.join(p['roles'])}): {', '.join(p['contact'].values())}" for p in d["notify"]]
    if hidden_note(d):
        lines += ["", f"_{hidden_note(d)}_"]
    return "\n".join(lines) + "\n"


def change_html(rep: ChangeReport) -> str:
    """A self-contained HTML page of the same report (for mail or a change ticket attachment)."""
    return change_doc_html(change_dict(rep))


def change_doc_html(d: dict[str, Any]) -> str:
    """The HTML page of a change answer (``change_dict``, possibly redacted)."""
    e = html.escape

    def items(xs: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{e(x)}</li>" for x in xs) + "</ul>" if xs else "<p>none</p>"

    rows = "".join(f"<tr><td>{s['tier']}</td><td>{e(s['name'])}</td><td>{e(s['worst_case'])}</td>"
                   f"<td>{e(' → '.join(s['path']))}</td></tr>" for s in d["services"])
    title = "Change impact: " + ", ".join(c["name"] for c in d["cis"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title></head><body>"
            f"<h1>{e(title)}</h1><p>Window {e(d['start'])} to {e(d['end'])} ({e(d['type'])}); risk "
            f"<strong>{e(d['risk'])}</strong> (score {d['score']}); {d['affected_count']} CIs at risk.</p>"
            f"<h2>Why this risk</h2>{items(d['reasons'])}<h2>Conflicts</h2>{items(d['conflicts'])}"
            "<h2>Services at risk (worst case)</h2><table><tr><th>tier</th><th>service</th><th>worst case</th>"
            f"<th>why</th></tr>{rows}</table><h2>Approvers</h2>"
            + items([f"{a['name']} ({', '.join(a['for'])}): {', '.join(a['contact'].values())}"
                     for a in d["approvers"]])
            + (f"<p><em>{e(hidden_note(d))}</em></p>" if hidden_note(d) else "")
            + "</body></html>\n")
