"""Identity conflicts keep their history: open, closed by ageing, or resolved (merged / kept separate).

A conflict is recorded by a batch (``cmdb.planning``) and then ends one of two ways, and its row stays
with how it ended, so "how was this settled, when, by whom" is always answerable:

``closed``
    by ageing (``cmdb.planning.ageing``): a complete run retired the identity keys that tied its CIs,
    so they no longer point at two of them. The store keeps when (the batch's time), which run, whose
    (the batch's actor, else its source) and why (the keys retired), in a closure record beside the
    conflict (SQLite table ``conflict_closure``, Neo4j ``(:ConflictClosure)``).
``resolved``
    by someone (``cmdb conflicts resolve``, ``POST /conflicts/{id}/resolve``): ``merged`` or
    ``keep_separate``, when and by whom (``cmdb.store.merges``).

A closed conflict recorded again by a later batch (the same CIs tied again by the same keys) is open
again. Ageing closes open conflicts only; a resolved one stays resolved. Lists (``GraphStore.conflicts``,
``cmdb conflicts list``, ``GET /conflicts``) show open ones unless asked for a state; ``stats()`` and
the health report count open ones. Dumps carry every state (``conflict``, ``conflict_resolution``,
``conflict_closure`` records), so export, restore and migrate keep them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from cmdb.errors import BadInputError

if TYPE_CHECKING:
    from cmdb.store.base import ChangeSet, Conflict

CONFLICT_STATES: tuple[str, ...] = ("open", "closed", "resolved")
STATE_FILTERS: tuple[str, ...] = (*CONFLICT_STATES, "all")
CLOSURE_FIELDS: tuple[str, ...] = ("id", "at", "run_id", "actor", "reason")


def check_state(state: str) -> None:
    if state not in STATE_FILTERS:
        raise BadInputError(f"unknown conflict state {state!r}; use one of {', '.join(STATE_FILTERS)}")


def closure_rows(cs: ChangeSet) -> list[dict[str, Any]]:
    """The closure record of every conflict ``cs`` closes (``CLOSURE_FIELDS``)."""
    run = cs.run
    return [{"id": cid, "at": run.ended_at, "run_id": run.run_id, "actor": run.actor or run.source,
             "reason": cs.conflicts_closed_why.get(cid) or "its keys no longer tie two of its CIs"}
            for cid in cs.conflicts_closed]


def conflict_dict(c: Conflict) -> dict[str, Any]:
    """A conflict as JSON output: its fields and its ``state``."""
    return {**asdict(c), "state": c.state}
