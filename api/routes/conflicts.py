"""``/conflicts``: identity conflicts (items tying CIs whose identity values disagree, class claims of
another family), recorded and never merged silently; ``POST /conflicts/{id}/resolve`` settles one by
merging its CIs or keeping them separate (``cmdb.merge``), as ``cmdb conflicts resolve`` does.

Conflicts are kept when they end (``cmdb.store.conflicts``): ``GET /conflicts`` lists open ones unless
``?state=closed|resolved|all`` asks otherwise; ``GET /conflicts/{id}`` answers in any state.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, require
from api.problems import ConflictError, responses
from api.reads import decode_cursor, encode_cursor
from api.schemas import ConflictOut, ConflictResolve
from api.state import ApiState, api_state
from api.visibility import can_see, visible_ids
from cmdb.errors import NotFoundError
from cmdb.merge import resolve_conflict
from cmdb.store.base import Conflict, GraphStore
from cmdb.store.conflicts import conflict_dict

router = APIRouter(prefix="/conflicts", tags=["Identity conflicts"], responses=responses(400, 401, 403, 422, 500))
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]


def _visible_conflicts(store: GraphStore, who: Principal, state: str = "open") -> list[Conflict]:
    """Conflicts a partition-limited token may see: those whose every CI it may see (a conflict names
    its CIs and the item's values, so one touching a hidden partition is left out, as a hidden CI is)."""
    items = store.conflicts(state)
    if who.partitions is None:
        return items
    seen = visible_ids(store, who, {i for c in items for i in c.ci_ids})
    return [c for c in items if all(i in seen for i in c.ci_ids)]


StateFilter = Literal["open", "closed", "resolved", "all"]


@router.get("", summary="Identity conflicts, oldest first: open ones unless state asks for others")
def list_conflicts(st: StateDep, who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   cursor: str | None = None,
                   state: Annotated[StateFilter, Query(description="open (default), closed (by ageing), resolved"
                                                                   " (merged or kept separate), or all")] = "open",
                   ) -> dict[str, Any]:
    items = _visible_conflicts(st.store, who, state)
    offset = decode_cursor(cursor)
    page = items[offset:offset + limit]
    more = offset + limit < len(items)
    return {"items": [ConflictOut(**conflict_dict(c)).model_dump() for c in page], "total": len(items),
            "next_cursor": encode_cursor(offset + limit) if more else None}


@router.get("/{conflict_id}", response_model=ConflictOut, summary="One identity conflict, in any state",
            responses=responses(404))
def get_conflict(st: StateDep, who: Viewer, conflict_id: str) -> dict[str, Any]:
    for c in _visible_conflicts(st.store, who, "all"):
        if c.id == conflict_id:
            return conflict_dict(c)
    raise NotFoundError(f"no identity conflict {conflict_id!r}; GET /api/v1/conflicts lists them")


@router.post("/{conflict_id}/resolve", summary="Resolve a conflict: merge its CIs, or keep them separate for good",
             responses=responses(404, 409))
def resolve(st: StateDep, who: Operator, conflict_id: str, body: ConflictResolve) -> dict[str, Any]:
    """``merge`` folds the conflict's CIs into ``keep`` (default: its first CI) in one transaction:
    relationships move, provenance and identity keys combine, both histories stay, the duplicate's id
    and name then answer with the kept CI. ``keep_separate`` records that they are different: they
    are neither merged nor reported again for this. A conflict naming a CI the token may not see is
    answered as missing."""
    missing = NotFoundError(f"no identity conflict {conflict_id!r}; GET /api/v1/conflicts lists them")
    conflict = st.store.conflict(conflict_id)
    if conflict is None:
        raise missing
    for ci_id in conflict.ci_ids:
        ci = st.store.get_ci(ci_id)
        if ci is not None and not can_see(who, ci):
            raise missing
    if conflict.resolution is not None:
        raise ConflictError(f"conflict {conflict_id} was already resolved ({conflict.resolution} at "
                            f"{conflict.resolved_at} by {conflict.resolved_by})")
    if conflict.closed_at is not None:
        raise ConflictError(f"conflict {conflict_id} was closed at {conflict.closed_at} by run {conflict.closed_run}:"
                            f" {conflict.closed_reason}; nothing to resolve")
    keep = None
    if body.keep is not None:
        kept = st.store.get_ci(body.keep)
        if kept is None or not can_see(who, kept):
            raise NotFoundError(f"no CI matches {body.keep!r} (tried id)")
        keep = kept.id
    resolution, report = resolve_conflict(st.store, conflict_id, body.action, keep=keep, actor=who.name,
                                          dry_run=body.dry_run, schema=st.schema)
    done = st.store.conflict(conflict_id) or conflict
    return {"conflict": ConflictOut(**conflict_dict(done)).model_dump(), "resolution": asdict(resolution),
            "dry_run": body.dry_run, "merge": asdict(report) if report is not None else None}
