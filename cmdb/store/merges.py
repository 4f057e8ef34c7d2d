"""Merging CIs and resolving identity conflicts: the records and the store capability.

A merge folds a duplicate CI into the one kept. The core (``cmdb.merge``) plans it like any batch:
the kept CI's combined state, the duplicate's relationships re-created on the kept CI, the history
events. What only a store can do is listed in ``CIMerge``, applied at the end of the batch's write
transaction: the duplicate's identity keys now point at the kept CI, its old relationships, sightings
and row go, and its id and display name become aliases of the kept CI, so ``get_ci(dup_id)``,
``find_by_name(dup_name)`` and ``events([kept])`` keep answering. Its history stays where it was.

A conflict is resolved by merging (``cmdb.merge``) or by keeping the CIs separate; the resolution is
stored beside the conflict (which a later batch may record again) and a kept-separate pair is never
merged automatically nor reported again (``BatchReader.kept_separate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Resolution = Literal["merged", "keep_separate"]
RESOLUTIONS: tuple[str, ...] = ("merged", "keep_separate")


@dataclass
class CIMerge:
    """``dup`` folded into ``keep``; what the store does with it is in the module docstring."""

    keep: str
    dup: str
    dup_name: str | None = None
    resolves: str | None = None  # a conflict this merge resolves, recorded as "merged" in the same transaction
    at: str = ""
    actor: str | None = None


@dataclass
class ConflictResolution:
    id: str  # the conflict's id
    resolution: str
    at: str
    actor: str | None
    ci_ids: list[str]
