"""``/conflicts``: batch items whose identity keys point at two or more CIs (recorded, never merged).

Resolving needs the store to close a conflict, which it cannot yet; the list and each conflict
are served, and fixing the data (a manual PATCH of the right CI, then a re-run) clears the cause.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, require
from api.problems import responses
from api.reads import decode_cursor, encode_cursor
from api.schemas import ConflictOut
from api.state import ApiState, api_state
from cmdb.errors import NotFoundError

router = APIRouter(prefix="/conflicts", tags=["Identity conflicts"], responses=responses(400, 401, 403, 422, 500))
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]


@router.get("", summary="Open identity conflicts, oldest first")
def list_conflicts(st: StateDep, who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   cursor: str | None = None) -> dict[str, Any]:
    items = st.store.conflicts()
    offset = decode_cursor(cursor)
    page = items[offset:offset + limit]
    more = offset + limit < len(items)
    return {"items": [ConflictOut(**asdict(c)).model_dump() for c in page], "total": len(items),
            "next_cursor": encode_cursor(offset + limit) if more else None}


@router.get("/{conflict_id}", response_model=ConflictOut, summary="One identity conflict", responses=responses(404))
def get_conflict(st: StateDep, who: Viewer, conflict_id: str) -> dict[str, Any]:
    for c in st.store.conflicts():
        if c.id == conflict_id:
            return asdict(c)
    raise NotFoundError(f"no identity conflict {conflict_id!r}; GET /api/v1/conflicts lists them")
