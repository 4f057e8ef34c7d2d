"""The collector protocol: ``read(target) -> raw`` (I/O only), ``transform(raw) -> Observed`` (pure), and
one table per collector saying which library exception means which outcome.

As Cartography's get/transform: what ``read`` returns can be recorded (``cmdb discover ... --record DIR``)
and fed to ``transform`` in a golden test, with no network. The runner (``discovery.runner``) calls the
two, hands the facts to ``discovery.observations.to_batch`` and decides the target's outcome from the
exception ``read`` raised, through the collector's ``outcomes`` table (in the manner of httpx's
``map_exceptions``): the first entry whose exception type matches wins, after the collector's own
``TargetError`` (which already carries its outcome) and before ``COMMON_OUTCOMES``. Nothing in a
collector turns an exception into an outcome by an ``except`` ladder of its own.

A reading that got only part of the target (a cloud scope whose calls were partly denied) is raised as
``PartialReading``: the runner records and transforms what arrived (the transform says ``complete:
false``), ingests it, and takes the outcome from the table for the exception the reading names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cmdb.batch import Batch
from cmdb.errors import CmdbError
from discovery.observations import Fact
from discovery.outcomes import Outcome, TargetError, TargetResult

OutcomeTable = tuple[tuple[type[BaseException], Outcome], ...]

COMMON_OUTCOMES: OutcomeTable = (
    (TimeoutError, Outcome.TIMEOUT),  # also asyncio's, and the runner's per-target deadline
    (ConnectionRefusedError, Outcome.REFUSED),
    (OSError, Outcome.UNREACHABLE),
    (CmdbError, Outcome.ERROR),
)


def outcome_of(exc: BaseException, table: OutcomeTable) -> Outcome:
    """The outcome ``exc`` means: its own if a TargetError, else the first match of ``table`` then of
    ``COMMON_OUTCOMES``, else ``error``."""
    if isinstance(exc, TargetError):
        return exc.outcome
    for kind, outcome in (*table, *COMMON_OUTCOMES):
        if isinstance(exc, kind):
            return outcome
    return Outcome.ERROR


class PartialReading(Exception):
    """Raised by ``read`` with what did arrive (``raw``) and the failure that stopped the rest
    (``cause``, mapped by the outcomes table)."""

    def __init__(self, raw: Any, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.raw = raw
        self.cause = cause


@dataclass
class Observed:
    """What ``transform`` made of one target's raw reading.

    ``facts`` None: nothing definite to write (no batch at all, not even an empty one); ``keep`` is
    what a run-level step (``finish``) needs after every target is done."""

    facts: list[Fact] | None
    scope: str | None
    complete: bool
    detail: str = ""
    profile: str | None = None
    keep: dict[str, Any] = field(default_factory=dict)


class Collector(Protocol):
    """One discovery method."""

    method: str
    source: str  # the batches' source
    profile_attr: str | None  # Device attribute remembering the working profile (snmp_profile ...)
    outcomes: OutcomeTable

    async def read(self, target: str, remembered_profile: str | None) -> Any:
        """Everything the target tells (I/O only); raises what its libraries raise, or TargetError."""

    def transform(self, raw: Any) -> Observed:
        """Pure: the raw reading as observations."""

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        """Run-level batches built from every target's kept facts (may be empty)."""


async def in_thread(pool: Any, fn: Any, *args: Any) -> Any:
    """Runs a blocking ``read`` on the collector's thread pool."""
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"_type": type(value).__name__, **{f.name: _jsonable(getattr(value, f.name))
                                                  for f in dataclasses.fields(value)}}
    if isinstance(value, bytes):
        return {"_bytes": value.hex()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def record_raw(directory: Path, method: str, target: str, raw: Any) -> Path:
    """Writes one target's raw reading as JSON to ``DIR/<method>/<target>.json`` (for golden tests).

    It holds what the target answered, never a secret: credentials are not part of a reading."""
    out = directory / method / (re.sub(r"[^A-Za-z0-9_.-]", "_", target) + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(raw), indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return out
