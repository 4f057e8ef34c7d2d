"""Liveness (``/healthz``), readiness (``/readyz``: the store answers) and Prometheus ``/metrics``.

These are public (probes and scrapers carry no token) and live outside ``/api/v1``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.problems import responses
from api.state import ApiState, api_state
from cmdb.errors import CmdbError

router = APIRouter(tags=["Health"])
StateDep = Annotated[ApiState, Depends(api_state)]
PUBLIC = {"x-cmdb-public": True}


@router.get("/healthz", summary="The process answers", openapi_extra=PUBLIC)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The store answers", openapi_extra=PUBLIC, responses=responses(503))
def readyz(st: StateDep) -> Any:
    try:
        writes = st.store.write_counter()
    except CmdbError as exc:
        return JSONResponse({"type": "about:blank", "title": "Service unavailable", "status": 503,
                             "detail": f"the store does not answer: {exc}"}, status_code=503,
                            media_type="application/problem+json")
    return {"status": "ready", "store": st.store.url, "writes": writes, "impact_index_writes": st.impact.writes}


@router.get("/metrics", summary="Prometheus metrics", openapi_extra=PUBLIC,
            responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
async def metrics(st: StateDep) -> Response:
    return Response(st.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
