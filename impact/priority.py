"""Incident priority from an impact x urgency matrix, both configurable.

Impact is read from the worst affected service: its tier and state pick an impact level through
``impact_levels``; urgency is given by the person raising the incident. The default is the common
ITIL 3x3 matrix onto P1-P5. A deployment overrides either table with a YAML/JSON file
(``--matrix FILE`` or ``CMDB_PRIORITY_MATRIX``)::

    levels: [high, medium, low]
    matrix: {high: {high: P1, medium: P2, low: P3}, medium: {...}, low: {...}}   # impact -> urgency -> P
    impact_levels: {"1": {down: high, degraded: medium, at_risk: low}, "2": {...}, default: low}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from cmdb.config import load_document, validated
from cmdb.errors import BadInputError, ConfigError
from impact.radius import AffectedService
from impact.states import State

LEVELS = ("high", "medium", "low")

DEFAULT_MATRIX: dict[str, dict[str, str]] = {
    "high": {"high": "P1", "medium": "P2", "low": "P3"},
    "medium": {"high": "P2", "medium": "P3", "low": "P4"},
    "low": {"high": "P3", "medium": "P4", "low": "P5"},
}

# tier -> state -> impact level; tiers not listed (and "no service hit") fall back to ``default``.
DEFAULT_IMPACT_LEVELS: dict[str, dict[str, str]] = {
    "1": {"down": "high", "degraded": "medium", "at_risk": "low"},
    "2": {"down": "medium", "degraded": "low", "at_risk": "low"},
}


@dataclass(frozen=True)
class Priority:
    priority: str
    impact: str
    urgency: str
    reason: str


@dataclass(frozen=True)
class PriorityMatrix:
    """The impact x urgency table and the (tier, state) -> impact table."""

    matrix: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_MATRIX)
    impact_levels: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_IMPACT_LEVELS)
    default_impact: str = "low"
    levels: tuple[str, ...] = LEVELS

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriorityMatrix:
        """The matrix from ``path``, else from the file named by ``CMDB_PRIORITY_MATRIX``, else the
        ``priority`` section of the configuration file (``cmdb.config``), else the default 3x3."""
        path = path or os.environ.get("CMDB_PRIORITY_MATRIX") or None
        if path is None:
            doc = load_document()
            section = doc.section("priority")
            if section is None:
                return cls()
            settings = validated(doc, ("priority",), PrioritySettings.model_validate, section)
            return cls.from_dict(settings.model_dump(exclude_none=True), origin=f"{doc.path or 'configuration'}:"
                                 " priority")
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the priority matrix {p}: {exc}") from exc
        if not isinstance(doc, Mapping):
            raise ConfigError(f"priority matrix {p}: expected a mapping with 'matrix' and/or 'impact_levels'")
        return cls.from_dict(doc, origin=str(p))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], origin: str = "priority matrix") -> PriorityMatrix:
        levels = tuple(str(x) for x in doc.get("levels", LEVELS))
        matrix = {str(i): {str(u): str(p) for u, p in row.items()} for i, row in
                  (doc.get("matrix") or DEFAULT_MATRIX).items()}
        for impact in levels:
            missing = [u for u in levels if u not in matrix.get(impact, {})]
            if missing:
                raise ConfigError(f"{origin}: matrix row {impact!r} lacks urgency {', '.join(missing)}")
        raw_levels = dict(doc.get("impact_levels") or DEFAULT_IMPACT_LEVELS)
        default = str(raw_levels.pop("default", doc.get("default_impact", "low")))
        impact_levels = {str(t): {str(s): str(lv) for s, lv in row.items()} for t, row in raw_levels.items()}
        for row in [*impact_levels.values(), {"default": default}]:
            bad = [lv for lv in row.values() if lv not in levels]
            if bad:
                raise ConfigError(f"{origin}: impact level(s) {', '.join(bad)} not in levels {', '.join(levels)}")
        return cls(matrix, impact_levels, default, levels)

    def impact_of(self, services: Iterable[AffectedService]) -> tuple[str, str]:
        """(impact level, reason): the highest level any affected service's (tier, state) maps to."""
        best: tuple[int, str, str] | None = None
        for svc in services:
            level = self.impact_levels.get(str(svc.tier), {}).get(svc.state.label, self.default_impact)
            rank = self.levels.index(level)
            if best is None or rank < best[0]:
                best = (rank, level, f"tier-{svc.tier} service {svc.name} is {svc.state.label}")
        if best is None:
            return self.default_impact, "no service affected"
        return best[1], best[2]

    def priority(self, services: Iterable[AffectedService], urgency: str) -> Priority:
        if urgency not in self.levels:
            raise BadInputError(f"urgency {urgency!r}: use one of {', '.join(self.levels)}")
        impact, reason = self.impact_of(services)
        return Priority(self.matrix[impact][urgency], impact, urgency, reason)


def worst_state(services: Iterable[AffectedService]) -> State:
    return max((s.state for s in services), default=State.OK)


class PrioritySettings(BaseModel):
    """The ``priority`` section of the configuration file, the same shape as a matrix file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: list[str] | None = None
    matrix: dict[str, dict[str, str]] | None = None
    impact_levels: dict[str, dict[str, str] | str] | None = None
    default_impact: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PrioritySettings:
        try:
            PriorityMatrix.from_dict(self.model_dump(exclude_none=True), origin="priority")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("priority: ")) from None
        return self
