"""Scores: for each class and dimension, the share of what is right, as a percentage (100: nothing found).

* completeness: 1 - weighted missing values / weighted values asked (required attributes weigh 2,
  recommended 1), over the class's live CIs;
* correctness: 1 - share of the class's live CIs named by at least one correctness finding;
* staleness: 1 - share of the class's live CIs that are stale or not seen within the horizon.

A class's score is the mean of its three; each overall dimension is the mean of the classes' weighted
by their CI counts, and the overall score the mean of the three dimensions. Plain shares a reader can
recompute from the findings: no hidden weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cmdb.health.rules import DIMENSIONS, Finding
from cmdb.store.health import AttrGap


def _pct(x: float) -> float:
    return round(100.0 * x, 1)


def class_scores(live: Mapping[str, int], gaps: Iterable[AttrGap], weights: Mapping[str, Mapping[str, int]],
                 findings: Iterable[Finding]) -> dict[str, dict[str, float]]:
    missing: dict[str, int] = {}
    for g in gaps:
        missing[g.cls] = missing.get(g.cls, 0) + weights[g.cls][g.attr] * g.missing
    flagged: dict[str, dict[str, set[str]]] = {d: {} for d in DIMENSIONS if d != "completeness"}
    for f in findings:
        if f.dimension in flagged:
            for ci in f.cis:
                flagged[f.dimension].setdefault(ci.cls, set()).add(ci.id)
    out: dict[str, dict[str, float]] = {}
    for cls, n in sorted(live.items()):
        if n <= 0:
            continue
        asked = n * sum(weights.get(cls, {}).values())
        dims = {
            "completeness": 1.0 - missing.get(cls, 0) / asked if asked else 1.0,
            "correctness": 1.0 - len(flagged["correctness"].get(cls, ())) / n,
            "staleness": 1.0 - len(flagged["staleness"].get(cls, ())) / n,
        }
        out[cls] = {"cis": n, **{d: _pct(v) for d, v in dims.items()},
                    "score": _pct(sum(dims.values()) / len(dims))}
    return out


def overall(classes: Mapping[str, Mapping[str, float]]) -> tuple[float, dict[str, float]]:
    """(overall score, score per dimension), weighted by each class's number of CIs; 100 for no CIs."""
    total = sum(c["cis"] for c in classes.values())
    if not total:
        return 100.0, {d: 100.0 for d in DIMENSIONS}
    dims = {d: round(sum(c[d] * c["cis"] for c in classes.values()) / total, 1) for d in DIMENSIONS}
    return round(sum(dims.values()) / len(dims), 1), dims
