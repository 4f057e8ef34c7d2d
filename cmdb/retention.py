"""How long operational records are kept, and pruning them (``cmdb prune``, the scheduler's daily job).

The ``retention:`` section of the configuration file (``cmdb.config``) gives an age per kind of
record (``cmdb.store.retention`` says what each kind is, and what is never pruned: CIs, history,
the run ledger, tasks, conflicts)::

    retention:
      jobs: 30d                 # API background jobs, by when they ended
      idempotency_keys: 7d      # Idempotency-Key records of POST /batches; at least 1d
      outbox: 90d               # notifications delivered or given up
      health_snapshots: 365d    # health report scores (the trend)
      discovery_runs: 365d      # discovery run records (per-target outcomes)
      schedule: "30 3 * * *"    # when the scheduler prunes (cron); null: it does not

An age is a number with a unit (``m``, ``h``, ``d``, ``w``; a bare number is days) or ``null`` /
``never``: keep that kind for good. ``CMDB__RETENTION__OUTBOX=30d`` overrides one value.

An idempotency key pruned is forgotten: the same key sent again is a new key, its batch written again.
Its age is therefore bounded below by a day, longer than any sensible client retry window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from cmdb.config import load_document, validated
from cmdb.store.base import GraphStore, iso
from cmdb.store.retention import PRUNE_KINDS

DEFAULT_SCHEDULE = "30 3 * * *"
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}
_NEVER = ("never", "forever", "keep")
MINIMUM = {"idempotency_keys": timedelta(days=1)}
"""Ages below these are refused: a key forgotten within a day could let a retried POST write twice."""


def parse_age(value: Any) -> timedelta | None:
    """``30d``, ``12h``, ``2w``, ``90m``, a number of days, or None / ``never`` (keep for good)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NEVER):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an age; write 30d, 12h, 2w or never")
    if isinstance(value, int | float):
        value = f"{value}d"
    m = _AGE.match(str(value))
    if m is None:
        raise ValueError(f"{value!r} is not an age; write 30d, 12h, 2w or never")
    age = timedelta(**{_UNIT[m.group(2)]: float(m.group(1))})
    if age <= timedelta(0):
        raise ValueError(f"{value!r}: an age must be more than zero (never keeps records for good)")
    return age


def _text(age: timedelta | None, raw: Any) -> str | None:
    if age is None:
        return None
    return f"{raw}d" if isinstance(raw, int | float) else str(raw).strip()


class RetentionSettings(BaseModel):
    """The ``retention`` section; ages as written (``30d``), None for keep for good."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: str | None = "30d"
    idempotency_keys: str | None = "7d"
    outbox: str | None = "90d"
    health_snapshots: str | None = "365d"
    discovery_runs: str | None = "365d"
    schedule: str | None = DEFAULT_SCHEDULE

    @field_validator(*PRUNE_KINDS, mode="before")
    @classmethod
    def _age(cls, v: Any) -> str | None:
        return _text(parse_age(v), v)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        fields = v.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(v, second_at_beginning=len(fields) == 6):
            raise ValueError(f"bad cron expression {v!r}: five fields (minute hour day month weekday), "
                             "or six with seconds first; null turns the scheduled prune off")
        return v

    @field_validator(*MINIMUM)
    @classmethod
    def _minimum(cls, v: str | None, info: ValidationInfo) -> str | None:
        least = MINIMUM[str(info.field_name)]
        age = parse_age(v)
        if age is not None and age < least:
            raise ValueError(f"{v} is shorter than {least.days} day(s): a client retrying a POST after its key is"
                             " forgotten would write the batch twice")
        return v

    def age(self, kind: str) -> timedelta | None:
        """How long records of ``kind`` are kept; None: for good."""
        return parse_age(getattr(self, kind))


def validate_retention(raw: Any) -> RetentionSettings:
    return RetentionSettings.model_validate(raw or {})


def load_retention(path: Path | str | None = None) -> RetentionSettings:
    """The ``retention`` section of the configuration in effect (defaults when absent)."""
    doc = load_document(path)
    settings: RetentionSettings = validated(doc, ("retention",), validate_retention, doc.section("retention"))
    return settings


@dataclass
class PruneReport:
    """What one prune removed (or, dry, would remove) per kind; a kind kept for good has ``keep`` None."""

    at: str
    dry_run: bool
    kinds: list[dict[str, Any]] = field(default_factory=list)  # {kind, keep, before, removed}

    @property
    def removed(self) -> int:
        return sum(int(k["removed"]) for k in self.kinds)

    def summary(self) -> dict[str, Any]:
        return {"at": self.at, "dry_run": self.dry_run, "removed": self.removed,
                "kinds": {k["kind"]: k["removed"] for k in self.kinds}}

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "dry_run": self.dry_run, "removed": self.removed, "kinds": self.kinds}


def prune(store: GraphStore, settings: RetentionSettings, *, now: datetime | None = None,
          dry_run: bool = False) -> PruneReport:
    """Every kind with an age pruned of records that ended more than that age before ``now``."""
    now = now or datetime.now(UTC)
    report = PruneReport(iso(now), dry_run)
    for kind in PRUNE_KINDS:
        age = settings.age(kind)
        if age is None:
            report.kinds.append({"kind": kind, "keep": None, "before": None, "removed": 0})
            continue
        before = iso(now - age)
        removed = store.prune_records(kind, before, dry_run=dry_run)
        report.kinds.append({"kind": kind, "keep": getattr(settings, kind), "before": before, "removed": removed})
    return report
