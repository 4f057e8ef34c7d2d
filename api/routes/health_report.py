"""``GET /api/v1/health/report``: the CMDB health report (``cmdb.health``) for viewers and up.

The report speaks of the whole estate: scores, counts and duplicate groups say that CIs exist even
where no CI is named. So a token limited to partitions gets 403 here rather than a report that would
leak what its partitions hide (or scores that would not add up). The route only reads: it stores no
snapshot (``cmdb health`` does, for ``--trend``). ``/healthz`` stays the process's liveness probe.

A report of 100k CIs takes seconds, so answers are kept while the graph is unchanged (the impact
answers' cache, ``api.answer_cache``: recomputed in the background after a minute, as staleness is
relative to now); ``Cache-Control: no-cache`` computes afresh.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, HTTPException, Query

from api.answer_cache import AnswerCache
from api.auth import Principal, require
from api.problems import responses
from api.state import ApiState, api_state
from cmdb.health.config import HealthConfig
from cmdb.health.report import build_report, check_class, filter_class

router = APIRouter(prefix="/health", tags=["Health report"], responses=responses(400, 401, 403, 422, 500))
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]


@router.get("/report", summary="Completeness, correctness and staleness per class, scored and explained")
async def health_report(
    st: StateDep, who: Viewer,
    cls: Annotated[str | None, Query(alias="class", description="Only this class and its subclasses.")] = None,
    max_cis: Annotated[int, Query(ge=0, le=1000, description="CIs named per finding (counts stay exact).")] = 100,
    cache_control: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    if who.partitions is not None:
        raise HTTPException(status_code=403, detail=(
            f"token {who.name!r} is limited to partitions; the health report covers the whole estate, so it needs"
            " a token without a partition limit"))
    if cls is not None:
        check_class(st.schema, cls)  # before any work, and never cached

    def compute() -> dict[str, Any]:
        report = build_report(st.store, st.schema, HealthConfig.load(st.schema))
        return (filter_class(report, st.schema, cls) if cls is not None else report).as_dict(max_cis)

    if "no-cache" in (cache_control or "").lower():
        return await anyio.to_thread.run_sync(compute)
    answer: dict[str, Any] = await st.answers.get(
        AnswerCache.key("health", {"class": cls, "max_cis": max_cis}), lambda: st.impact.version,
        lambda: anyio.to_thread.run_sync(compute))
    return answer
