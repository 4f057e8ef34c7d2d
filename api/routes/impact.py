"""``/impact``: incident and change analysis, single points of failure, expiry; JSON, Markdown or HTML.

Incidents, changes and SPOFs use the app's warm impact index (``api.impact_index``): no request
rebuilds it. ``as_of`` incidents replay history instead, as the CLI does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response

from api.answer_cache import AnswerCache
from api.auth import Principal, require
from api.problems import responses
from api.reads import find_ci, redact_impact
from api.redaction import change_doc, redact_expiry, redact_spof
from api.renderings import (
    FORMATS,
    expiry_html,
    expiry_markdown,
    incident_html,
    incident_markdown,
    negotiate,
    spof_html,
    spof_markdown,
)
from api.schemas import ChangeIn, IncidentIn
from api.state import ApiState, api_state
from cmdb.history import parse_time
from cmdb.store.base import iso
from impact.change import ChangeReport, analyse_change, change_doc_html, change_doc_markdown
from impact.engine import blast_radius
from impact.expiry import expiring
from impact.incident import IncidentReport, analyse_incident, report_dict
from impact.priority import PriorityMatrix
from impact.records import record_change, record_incident
from impact.spof import single_points_of_failure
from impact.states import State

router = APIRouter(prefix="/impact", tags=["Impact"], responses=responses(400, 401, 403, 404, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]
Format = Annotated[str | None, Query(pattern="^(json|markdown|html)$",
                                     description="json (default), markdown or html; or send Accept: text/markdown.")]
AcceptHdr = Annotated[str | None, Header(include_in_schema=False)]
CacheHdr = Annotated[str | None, Header(alias="Cache-Control", include_in_schema=False)]
T = TypeVar("T")
RENDERED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/markdown": {"schema": {"type": "string"}},
                      "text/html": {"schema": {"type": "string"}}}}}


def _answer(data: Any, fmt: str, markdown: Any, html: Any) -> Response:
    if fmt == "markdown":
        return Response(markdown(), media_type=FORMATS["markdown"])
    if fmt == "html":
        return Response(html(), media_type=FORMATS["html"])
    return JSONResponse(data)


@router.post("/incident", summary="What the failure of CIs hurts, how badly, why, whom to tell", responses=RENDERED)
async def incident(st: StateDep, who: Annotated[Principal, Depends(require("viewer"))], body: IncidentIn,
                   format: Format = None, accept: AcceptHdr = None, cache_control: CacheHdr = None) -> Response:
    if body.record:
        require_operator(who)

    def compute() -> dict[str, Any]:
        at = parse_time(body.as_of) if body.as_of else None
        source = None if at else st.impact.current()
        causes = [find_ci(st.store, st.schema, who, ref).id for ref in body.cis]
        rep = analyse_incident(st.store, causes, State.parse(body.mode), body.urgency, _matrix(st), at, body.days,
                               st.schema, source, body.max_stakeholders, body.max_reasons)
        data = report_dict(rep, body.max_affected)
        if body.record:
            started = at or iso(datetime.now(UTC))
            data["recorded"] = record_incident(st.store, body.record, [*rep.causes, *(s.id for s in rep.services)],
                                               started, priority=rep.priority.priority, actor=who.name)
            st.impact.poke()
        data["index_writes"] = st.impact.writes if source is not None else None
        return with_totals(data, rep)

    cacheable = not body.record and not body.as_of
    answer = await _cached(st, "incident", [body.model_dump(), _reach(who)], lambda: Rendered(compute()), cacheable,
                           cache_control)
    data = await _redacted(st, who, answer.data)
    fmt = negotiate(format, accept)
    if fmt == "json" and data is answer.data:
        return Response(answer.json(), media_type="application/json")
    return _answer(data, fmt, lambda: incident_markdown(data), lambda: incident_html(data))


def with_totals(data: dict[str, Any], rep: IncidentReport) -> dict[str, Any]:
    """An incident answer cut to size says how much there was: a core switch of a 100k-CI estate affects 20k
    CIs (6.8 MB of JSON), more than an alerting hook reads (``max_affected`` and friends cut it)."""
    data["affected_total"] = len(rep.radius.affected)
    data["stakeholders_total"] = len(rep.stakeholders) if rep.stakeholders_total is None else rep.stakeholders_total
    for sh, kept in zip(data["stakeholders"], rep.stakeholders, strict=True):
        sh["reasons_total"] = len(kept.reasons) if kept.reasons_total is None else kept.reasons_total
    return data


class Rendered:
    """An answer and, once asked for, its JSON bytes (57 kB for a core switch of the sample: worth keeping)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self._json: bytes | None = None

    def json(self) -> bytes:
        if self._json is None:
            self._json = json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()
        return self._json


async def _cached(st: ApiState, kind: str, request: Any, compute: Callable[[], T], cacheable: bool,
                  cache_control: str | None) -> T:
    """``compute`` in a thread, or a recent answer to the same request on the same graph (``api.answer_cache``)."""
    limiter = _analysts(st, kind)
    if not cacheable or "no-cache" in (cache_control or "").lower():
        return await anyio.to_thread.run_sync(compute, limiter=limiter)
    result: T = await st.answers.get(AnswerCache.key(kind, request), lambda: st.impact.version,
                                     lambda: anyio.to_thread.run_sync(compute, limiter=limiter))
    return result


_limiters: dict[tuple[int, int, str], anyio.CapacityLimiter] = {}


def _analysts(st: ApiState, kind: str) -> anyio.CapacityLimiter:
    """One computation of each kind (incident, change, spof) at a time in a worker; the others wait their turn.

    They are CPU-bound Python: threads beyond the first take turns on one interpreter lock, and 32 at
    once (an alert storm forcing fresh answers) cost 12 ms of CPU each on the sample estate instead of
    3.6 ms (4.2 ms queued one at a time), with every answer late (p99 714 ms; one at a time 140 ms).
    A kind has its own turn, so an incident never waits for a SPOF scan of a large estate. One limiter
    per app, event loop (tests run several) and kind."""
    key = (id(st), id(asyncio.get_running_loop()), kind)
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters[key] = anyio.CapacityLimiter(1)
    return limiter


def _reach(who: Principal) -> list[str] | None:
    """What the caller may see decides how its refs resolve: part of a cached answer's key."""
    return None if who.partitions is None else sorted(who.partitions)


async def _redacted(st: ApiState, who: Principal, data: dict[str, Any],
                    path_ids: list[list[str]] | None = None) -> dict[str, Any]:
    if who.partitions is None:
        return data
    return await anyio.to_thread.run_sync(redact_impact, st.store, who, data, path_ids)


def require_operator(who: Principal) -> None:
    from api.problems import ApiProblem

    if who.role not in ("operator", "admin"):
        raise ApiProblem(403, "storing a record (record=) needs an operator token")


_matrix_cache: dict[int, PriorityMatrix] = {}


def _matrix(st: ApiState) -> PriorityMatrix:
    key = id(st)
    if key not in _matrix_cache:
        _matrix_cache[key] = PriorityMatrix.load()
    return _matrix_cache[key]


@router.post("/change", summary="Blast radius, risk, conflicts and approvers of a planned change",
             responses=RENDERED)
async def change(st: StateDep, who: Annotated[Principal, Depends(require("viewer"))], body: ChangeIn,
                 format: Format = None, accept: AcceptHdr = None, cache_control: CacheHdr = None) -> Response:
    if body.record:
        require_operator(who)
    fmt = negotiate(format, accept)

    def compute() -> tuple[Any, ChangeReport]:
        start, end = parse_time(body.start), parse_time(body.end)
        cis = [find_ci(st.store, st.schema, who, ref).id for ref in body.cis]
        rep = analyse_change(st.store, cis, start, end, body.type, st.schema, st.impact.current(),
                             key=body.record)
        recorded = None
        if body.record:
            recorded = record_change(st.store, body.record, rep.cis, rep.start, rep.end, body.type,
                                     body.state, actor=who.name)
            st.impact.poke()
        return recorded, rep

    recorded, rep = await _cached(st, "change", [body.model_dump(), _reach(who)], compute, not body.record,
                                  cache_control)
    data = await anyio.to_thread.run_sync(change_doc, st.store, who, rep)
    if recorded is not None:
        data["recorded"] = recorded
    return _answer(data, fmt, lambda: change_doc_markdown(data), lambda: change_doc_html(data))


@router.get("/spof", summary="CIs whose failure alone takes a service of a tier down", responses=RENDERED)
async def spof(st: StateDep, who: Annotated[Principal, Depends(require("viewer"))],
               tier: Annotated[int, Query(ge=1, le=4)] = 1, include_groups: bool = False,
               format: Format = None, accept: AcceptHdr = None, cache_control: CacheHdr = None) -> Response:
    def compute() -> list[dict[str, Any]]:
        found = single_points_of_failure(st.impact.current(), tier, include_groups)
        return [{"id": s.id, "name": s.name, "class": s.cls,
                 "services": [{"name": n, "tier": t, "path": list(p), "path_ids": list(ids)}
                              for (n, t, p), ids in zip(s.services, s.path_ids, strict=True)]} for s in found]

    items = await _cached(st, "spof", [tier, include_groups], compute, True, cache_control)
    data = {"tier": tier, **await anyio.to_thread.run_sync(redact_spof, st.store, who, items)}
    return _answer(data, negotiate(format, accept), lambda: spof_markdown(data), lambda: spof_html(data))


@router.get("/expiry", summary="What breaks when certificates and licences lapse", responses=RENDERED)
def expiry(st: StateDep, who: Annotated[Principal, Depends(require("viewer"))],
           at: Annotated[str | None, Query(description="Reference time (default now).")] = None,
           within_days: Annotated[int, Query(ge=0, le=3650)] = 0,
           format: Format = None, accept: AcceptHdr = None) -> Response:
    when = parse_time(at) if at else iso(datetime.now(UTC))
    lapsing = expiring(st.store, when, timedelta(days=within_days))
    index = st.impact.current()
    radius = blast_radius(index, {c: State.DOWN for c in lapsing if c in index.fan or c in index.nodes})
    names = index.describe(lapsing)
    items = [{"id": c, "name": names[c].name if c in names else c, "class": names[c].cls if c in names else "",
              "expires": t} for c, t in sorted(lapsing.items(), key=lambda kv: kv[1])]
    data = redact_expiry(st.store, who, {
        "at": when, "within_days": within_days, "expiring": items,
        "services": [{"name": s.name, "tier": s.tier, "state": s.state.label, "path": list(s.path),
                      "path_ids": list(s.path_ids)} for s in radius.services()]})
    return _answer(data, negotiate(format, accept), lambda: expiry_markdown(data), lambda: expiry_html(data))
