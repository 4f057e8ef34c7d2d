"""Reconciliation: which source's value of an attribute wins.

Every source's value is kept (provenance plus alternatives). The resolved value is the one from
the highest-precedence source whose view is fresh, i.e. that source saw the CI within
``fresh_for``; when no source is fresh the highest-precedence value stays. Manual values never
go stale. Precedence is configurable per class and per attribute, and ``import:servicenow`` falls
back to the rank of ``import`` unless it is named itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cmdb.errors import ConfigError
from cmdb.store.base import AttrValue, Sighting, iso

# "neighbours": what a device says about its CDP/LLDP neighbours, below anything that asked them directly.
DEFAULT_PRECEDENCE: tuple[str, ...] = ("manual", "aws", "ssh", "snmp", "import", "scan", "neighbours")
MANUAL_SOURCES = frozenset({"manual"})
_LEGACY_KEYS = ("precedence", "precedence_overrides", "fresh_for_hours", "stale_after_runs", "retire_after_runs")


@dataclass
class ReconcileConfig:
    """Precedence, freshness and lifecycle thresholds; loaded from ``cmdb.yaml`` when present."""

    precedence: tuple[str, ...] = DEFAULT_PRECEDENCE
    # "Class", "Class.attr" or "*.attr" -> precedence list for that scope
    overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fresh_for: timedelta = timedelta(days=7)
    stale_after_runs: int = 3
    retire_after_runs: int = 6
    _rank_cache: dict[tuple[str, tuple[str, ...], str], int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], origin: str = "config") -> ReconcileConfig:
        cfg = cls()
        try:
            if "precedence" in doc:
                cfg.precedence = tuple(str(s) for s in doc["precedence"])
            for scope, order in (doc.get("precedence_overrides") or {}).items():
                cfg.overrides[str(scope)] = tuple(str(s) for s in order)
            if "fresh_for_hours" in doc:
                cfg.fresh_for = timedelta(hours=float(doc["fresh_for_hours"]))
            if "stale_after_runs" in doc:
                cfg.stale_after_runs = int(doc["stale_after_runs"])
            if "retire_after_runs" in doc:
                cfg.retire_after_runs = int(doc["retire_after_runs"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: invalid reconciliation setting: {exc}") from None
        if not 0 < cfg.stale_after_runs <= cfg.retire_after_runs:
            raise ConfigError(f"{origin}: need 0 < stale_after_runs <= retire_after_runs")
        return cfg

    @classmethod
    def load(cls, path: Path | str | None = None) -> ReconcileConfig:
        """The ``reconciliation`` section of the configuration file in effect (``cmdb.config``: ``path``,
        ``CMDB_CONFIG``, the user's or the system's file; ``CMDB__RECONCILIATION__*`` overrides), validated
        whole; defaults when there is none. The old flat format (the keys at the top level) is still read."""
        from cmdb.config import ReconciliationSettings, load_document, section_or_legacy, validated

        doc = load_document(path)
        section = section_or_legacy(doc, "reconciliation", _LEGACY_KEYS)
        validated(doc, ("reconciliation",), ReconciliationSettings.model_validate, section)
        return cls.from_mapping(section, origin=str(doc.path or "configuration"))

    def rank(self, source: str, ancestors: Sequence[str], attr: str) -> int:
        """Lower is stronger. Unknown sources rank below every listed one."""
        cache_key = (source, tuple(ancestors), attr)
        cached = self._rank_cache.get(cache_key)
        if cached is None:
            cached = self._rank_cache[cache_key] = self._rank(source, ancestors, attr)
        return cached

    def _rank(self, source: str, ancestors: Sequence[str], attr: str) -> int:
        order = self.precedence
        for scope in [f"{c}.{attr}" for c in ancestors] + [f"*.{attr}", *ancestors]:
            if scope in self.overrides:
                order = self.overrides[scope]
                break
        for candidate in (source, source.split(":", 1)[0]):
            if candidate in order:
                return order.index(candidate)
        return len(order)


def freshness_horizon(now: datetime, cfg: ReconcileConfig) -> str:
    """Sightings at or after this time are fresh."""
    return iso(now - cfg.fresh_for)


def is_fresh(source: str, sightings: Mapping[tuple[str, str], Sighting], horizon: str) -> bool:
    if source in MANUAL_SOURCES:
        return True
    return any(s.source == source and s.last_seen >= horizon for s in sightings.values())


def resolve(
    candidates: Mapping[str, AttrValue],
    ancestors: Sequence[str],
    attr: str,
    sightings: Mapping[tuple[str, str], Sighting],
    horizon: str,
    cfg: ReconcileConfig,
) -> AttrValue | None:
    """The winning value among the sources' candidates for one attribute (fresh before stale, then rank)."""
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    best: tuple[int, int] | None = None
    winner: AttrValue | None = None
    for source, value in candidates.items():
        key = (0 if is_fresh(source, sightings, horizon) else 1, cfg.rank(source, ancestors, attr))
        # Between sources of equal standing the newer value wins (timestamps sort as text).
        if best is None or key < best or (key == best and winner is not None and value.set_at > winner.set_at):
            best, winner = key, value
    return winner
