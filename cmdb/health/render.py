"""The health report and its trend as plain text: scores first, then findings worst first, each with
the CIs it concerns, why it matters and what to do."""

from __future__ import annotations

from cmdb.health.report import HealthReport
from cmdb.health.rules import DIMENSIONS
from cmdb.store.health import HealthSnapshot

LEGEND = ("Scores are the share that is right, in %: completeness = attribute values present (required count"
          " twice), correctness = CIs with no correctness finding, staleness = CIs neither stale nor unseen.")


def _dims(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {d[k]:.1f}" for k in DIMENSIONS)


def render_report(report: HealthReport, max_cis: int = 5, per_rule: int = 10) -> str:
    """The report as text; at most ``per_rule`` findings of one rule are spelled out (JSON has all)."""
    lines = [f"CMDB health at {report.at}: {report.overall:.1f} / 100 ({_dims(report.dimensions)})"]
    live = sum(int(s["cis"]) for s in report.classes.values())
    scope = f" of class {report.only_class} and its subclasses" if report.only_class else ""
    lines.append(f"{live} live CIs{scope} in {len(report.classes)} classes ({report.retired} retired CIs left out);"
                 f" stale after {report.stale_after_days} days.")
    lines.append(LEGEND)
    lines.append("")
    lines.append(f"{'class':<18} {'CIs':>7} {'score':>6} {'complete':>9} {'correct':>8} {'fresh':>6}")
    for cls, s in sorted(report.classes.items(), key=lambda kv: (kv[1]["score"], kv[0])):
        lines.append(f"{cls:<18} {int(s['cis']):>7} {s['score']:>6.1f} {s['completeness']:>9.1f}"
                     f" {s['correctness']:>8.1f} {s['staleness']:>6.1f}")
    lines.append("")
    if not report.findings:
        lines.append("No findings.")
    else:
        by_dim = {d: sum(1 for f in report.findings if f.dimension == d) for d in DIMENSIONS}
        lines.append(f"{len(report.findings)} findings ({_counts(by_dim)}), worst first:")
    shown: dict[str, int] = {}
    for f in report.findings:
        shown[f.rule] = shown.get(f.rule, 0) + 1
        if shown[f.rule] > per_rule:
            continue
        lines.append(f"- [{f.dimension}] {f.title}")
        if f.cis:
            named = ", ".join(f"{c.name or c.id} ({c.cls} {c.id})" for c in f.cis[:max_cis])
            more = f" and {f.count - min(len(f.cis), max_cis)} more" if f.count > max_cis else ""
            lines.append(f"    CIs: {named}{more}")
        if f.why:
            lines.append(f"    why: {f.why}")
        if f.action:
            lines.append(f"    do:  {f.action}")
    hidden = {rule: n - per_rule for rule, n in shown.items() if n > per_rule}
    if hidden:
        lines.append("  (not spelled out: " + ", ".join(f"{n} more {rule}" for rule, n in hidden.items())
                     + "; --json lists every finding)")
    if report.sources:
        lines.append("")
        lines.append("Sources (run ledger):")
        for run in report.sources:
            scope = run.scope if run.scope is not None else "(no scope)"
            lines.append(f"  {run.source} over {scope}: {run.runs} run(s), last {run.last_run},"
                         f" last complete {run.last_complete or 'never'}")
    return "\n".join(lines)


def _counts(by_dim: dict[str, int]) -> str:
    return ", ".join(f"{n} {d}" for d, n in by_dim.items() if n)


def render_trend(snapshots: list[HealthSnapshot], cls: str | None = None) -> str:
    if not snapshots:
        return "No health snapshots yet: every `cmdb health` run stores one."
    what = f"class {cls}" if cls else "the estate"
    lines = [f"Health of {what} over {len(snapshots)} run(s), oldest first:",
             f"{'at':<28} {'score':>6} {'change':>7} {'complete':>9} {'correct':>8} {'fresh':>6} {'findings':>9}"]
    previous: float | None = None
    for snap in snapshots:
        if cls is None:
            score, dims = snap.overall, snap.dimensions
        else:
            s = snap.classes.get(cls)
            if s is None:
                lines.append(f"{snap.at:<28} {'-':>6}   (no live {cls} CIs)")
                continue
            score, dims = s["score"], s
        change = "" if previous is None else f"{score - previous:+.1f}"
        previous = score
        lines.append(f"{snap.at:<28} {score:>6.1f} {change:>7} {dims['completeness']:>9.1f}"
                     f" {dims['correctness']:>8.1f} {dims['staleness']:>6.1f} {sum(snap.findings.values()):>9}")
    return "\n".join(lines)
