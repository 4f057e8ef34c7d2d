"""``/relationships``: one relationship's provenance, as ``/cis/{ref}/provenance`` gives a CI's.

Per attribute: the current value and the source it comes from, and every source's value with when
that source last saw the relationship and whether its value is current (``cmdb.rel_provenance``, the
view ``cmdb rel show`` prints). A relationship is named by its id (``/cis/{ref}/relationships`` lists
them); one with an end the caller may not see answers 404, exactly as a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api import visibility
from api.auth import Principal, require
from api.problems import responses
from api.state import ApiState, api_state
from cmdb.errors import NotFoundError
from cmdb.rel_provenance import rel_provenance

router = APIRouter(prefix="/relationships", tags=["Relationships"],
                   responses=responses(400, 401, 403, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]


class SourceValueOut(BaseModel):
    source: str
    value: Any = None
    run_id: str
    set_at: str = Field(description="When the source set this value.")
    last_seen: str | None = Field(description="When the source last saw the relationship (null: no sighting).")
    current: bool = Field(description="This source's value is the current one.")


class AttrProvenanceOut(BaseModel):
    value: Any = None
    source: str | None = Field(description="The source the current value comes from (null: not recorded).")
    sources: list[SourceValueOut]


class SightingOut(BaseModel):
    source: str
    scope: str
    first_seen: str
    last_seen: str
    last_run: str
    missed: int
    status: str


class RelProvenanceOut(BaseModel):
    model_config = {"populate_by_name": True, "json_schema_extra": {"examples": [{
        "id": "rel-0a1b2c3d4e5f60718293", "type": "CONNECTED_TO", "from": "ci-0001", "to": "ci-0002",
        "status": "active",
        "attributes": {"port": {"value": "Gi0/1", "source": "snmp", "sources": [
            {"source": "snmp", "value": "Gi0/1", "run_id": "run-7", "set_at": "2026-12-01T08:00:00.000000Z",
             "last_seen": "2026-12-04T08:00:00.000000Z", "current": True},
            {"source": "scan", "value": "eth0", "run_id": "run-9", "set_at": "2026-12-02T08:00:00.000000Z",
             "last_seen": "2026-12-02T08:00:00.000000Z", "current": False}]}},
        "sightings": []}]}}
    id: str
    type: str
    from_: str = Field(alias="from")
    to: str
    status: str
    attributes: dict[str, AttrProvenanceOut]
    sightings: list[SightingOut]


@router.get("/{rel_id}/provenance", response_model=RelProvenanceOut, response_model_by_alias=True,
            summary="Every source's value of every attribute of a relationship, and its sightings",
            responses=responses(404))
def provenance(st: StateDep, who: Viewer, rel_id: str) -> dict[str, Any]:
    rel = st.store.get_rels([rel_id]).get(rel_id)
    if rel is None or not visibility.visible_relationships(st.store, who, [rel]):
        raise NotFoundError(f"no relationship {rel_id!r}; GET /api/v1/cis/{{ref}}/relationships lists a CI's"
                            " relationships with their ids")
    return rel_provenance(rel, st.config).to_dict()
