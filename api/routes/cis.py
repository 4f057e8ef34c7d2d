"""``/cis``: list and search (cursor pages, the CLI's filters, ``fields=``), get by id or identity value,
create and update as the ``manual`` source through ``ingest`` (weak ETag, ``If-Match`` -> 412), retire,
provenance, history, a CI as of a past time, relationships."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Principal, authorize, require
from api.lean import LeanRoute, lean
from api.problems import ConflictError, PreconditionFailedError, responses
from api.reads import (
    check_batch_allowed,
    ci_events,
    ci_relationships,
    decode_cursor,
    decode_key_cursor,
    encode_key_cursor,
    find_ci,
    read,
    search_page,
)
from api.schemas import CIOut, CIPage, CIPatch, CIWrite, EventOut, RelOut
from api.state import ApiState, api_state
from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.history import ci_as_of, dependencies, parse_since, parse_time
from cmdb.identity import identity_keys
from cmdb.ingest import IngestResult, ingest
from cmdb.manual import retire_ci
from cmdb.model import Schema
from cmdb.store.base import BatchReader, ChangeSet, CIState, GraphStore, RelState, SearchQuery, sort_key

router = APIRouter(prefix="/cis", tags=["CIs"], responses=responses(400, 401, 403, 422, 500, 503),
                   route_class=LeanRoute)
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
CI_FIELDS = ("id", "class", "name", "status", "attrs", "created_at", "updated_at")


def etag_of(ci: CIState, body: bytes | None = None) -> str:
    """A weak validator of what a client sees of a CI (not its sightings, which every run refreshes): a hash
    of its full JSON answer (``body``, when the caller has already made it)."""
    return 'W/"' + hashlib.blake2b(body or ci_json(ci), digest_size=12).hexdigest() + '"'


def ci_json(ci: CIState, fields: list[str] | None = None) -> bytes:
    """A CI's JSON answer, keys sorted (so the ETag of a CI is the same however it was read)."""
    return json.dumps(ci_dict(ci, fields), ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      default=str).encode()


def ci_dict(ci: CIState, fields: list[str] | None = None) -> dict[str, Any]:
    full = {"id": ci.id, "class": ci.cls, "name": ci.name, "status": ci.status, "attrs": ci.attrs,
            "created_at": ci.created_at, "updated_at": ci.updated_at}
    if not fields:
        return full
    out: dict[str, Any] = {}
    for f in fields:
        if f.startswith("attrs."):
            out.setdefault("attrs", {})
            name = f[6:]
            if name in ci.attrs:
                out["attrs"][name] = ci.attrs[name]
        else:
            out[f] = full[f]
    return out


def rel_dict(r: RelState) -> dict[str, Any]:
    return {"id": r.id, "type": r.type, "from": r.src, "to": r.dst, "attrs": r.attrs, "status": r.status}


def parse_fields(fields: str | None) -> list[str] | None:
    if not fields:
        return None
    out = [f.strip() for f in fields.split(",") if f.strip()]
    bad = [f for f in out if f not in CI_FIELDS and not (f.startswith("attrs.") and len(f) > 6)]
    if bad:
        raise BadInputError(f"fields: unknown {', '.join(bad)}; use {', '.join(CI_FIELDS)} or attrs.<name>")
    return out


def _etag_matches(if_match: str | None, etag: str) -> bool:
    if if_match is None or if_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in if_match.split(","))


@router.get("", response_model=CIPage, summary="List and search CIs")
def list_cis(
    st: StateDep, who: Viewer,
    q: Annotated[str | None, Query(description="Substring of the CI name.")] = None,
    cls: Annotated[str | None, Query(alias="class", description="Class, including its subclasses.")] = None,
    status: Annotated[str | None, Query(pattern="^(active|stale|retired)$")] = None,
    attr: Annotated[list[str] | None, Query(description="attr=value filter; repeatable.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    fields: Annotated[str | None, Query(description="Comma-separated: id,class,name,status,attrs,attrs.<name>...")]
    = None,
) -> JSONResponse:
    filters: dict[str, Any] = {}
    for item in attr or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadInputError(f"attr {item!r}: expected attr=value")
        filters[name] = value
    classes = st.schema.descendants(cls) if cls else None
    after = decode_key_cursor(cursor)
    wanted = parse_fields(fields)
    page = search_page(st.store, who, SearchQuery(classes=classes, status=status, text=q, attrs=filters,
                                                  limit=limit + 1, after=after))
    more = len(page.items) > limit
    items = page.items[:limit]
    return JSONResponse({"items": [ci_dict(c, wanted) for c in items], "total": page.total,
                         "next_cursor": encode_key_cursor(sort_key(items[-1])) if more else None})


async def _get_ci_lean(request: Request) -> Response:
    """``GET /cis/{ref}`` without per-request dependency solving (``api.lean``): the same token check and read."""
    who = await authorize(request, "viewer")
    return await _answer_ci(request.app.state.api, who, request.path_params["ref"], request.query_params.get("fields"))


async def _answer_ci(st: ApiState, who: Principal, ref: str, fields: str | None) -> Response:
    wanted = parse_fields(fields)
    ci = await read(st, find_ci, st.store, st.schema, who, ref, True)
    body = ci_json(ci, wanted)
    return Response(body, media_type="application/json", headers={"ETag": etag_of(ci, None if wanted else body)})


@router.get("/{ref}", response_model=CIOut, summary="One CI by id, name or any identity value",
            responses=responses(404))
@lean(_get_ci_lean)
async def get_ci(st: StateDep, who: Viewer, ref: str, fields: str | None = None) -> Response:
    return await _answer_ci(st, who, ref, fields)


class _Guarded:
    """The store as ``ingest`` sees it, checking inside the write transaction that the CI is unchanged."""

    def __init__(self, store: GraphStore, ci_id: str, if_match: str | None) -> None:
        self.store, self.ci_id, self.if_match = store, ci_id, if_match

    def write_batch(self, plan: Any) -> ChangeSet:
        def guarded(reader: BatchReader) -> ChangeSet:
            state = reader.load_cis([self.ci_id]).get(self.ci_id)
            if state is not None:
                check_if_match(self.if_match, state)
            return cast(ChangeSet, plan(reader))

        return self.store.write_batch(guarded)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def check_if_match(if_match: str | None, ci: CIState) -> None:
    if not _etag_matches(if_match, etag_of(ci)):
        raise PreconditionFailedError(f"CI {ci.id} changed since you read it (If-Match {if_match} is not its "
                                      f"current ETag {etag_of(ci)}); read it again and retry")


def _check_keys(store: GraphStore, schema: Schema, cls: str, attrs: dict[str, Any], own: str | None) -> None:
    """409 before writing when the identity attributes name another CI than ``own``."""
    try:
        canonical = schema.validate(cls, attrs)
    except BadInputError:
        return  # ingest names the bad attribute
    for key in identity_keys(schema, cls, canonical):
        other = store.find_by_key(key)
        if other is not None and other != own:
            what = "already exists" if own is None else "is another CI"
            raise ConflictError(f"identity key {key} names CI {other}, which {what}; "
                                + ("update it with PATCH /api/v1/cis/" + other if own is None else
                                   "identity attributes cannot move to a second CI"))


def _manual_write(st: ApiState, who: Principal, cls: str, attrs: dict[str, Any], origin: str,
                  guard: _Guarded | None) -> IngestResult:
    batch = Batch.from_dict({"source": "manual", "cis": [{"ref": "ci", "class": cls, **attrs}]}, origin=origin)
    batch.actor = who.name
    check_batch_allowed(st.store, st.schema, who, batch)
    store = cast(GraphStore, guard) if guard is not None else st.store
    result = ingest(store, batch, schema=st.schema, config=st.config)
    st.metrics.ingested("manual", result)
    st.impact.poke()
    if result.conflicts:
        c = result.conflicts[0]
        raise ConflictError(f"identity conflict {c.id}: the CI's keys point at {', '.join(c.ci_ids)}; "
                            "nothing was written (see GET /api/v1/conflicts)")
    return result


@router.post("", status_code=201, response_model=CIOut, summary="Create a CI (as the manual source)",
             responses=responses(409))
def create_ci(st: StateDep, who: Operator, body: CIWrite, response: Response) -> JSONResponse:
    if "ref" in body.attrs or "class" in body.attrs:
        raise BadInputError("attrs: 'ref' and 'class' are not attributes")
    _check_keys(st.store, st.schema, body.class_, body.attrs, None)
    result = _manual_write(st, who, body.class_, body.attrs, "POST /cis", None)
    ci = st.store.get_ci(result.ci_ids["ci"])
    assert ci is not None
    return JSONResponse(ci_dict(ci), status_code=201,
                        headers={"ETag": etag_of(ci), "Location": f"/api/v1/cis/{ci.id}"})


def _identity_attrs(schema: Schema, ci: CIState) -> dict[str, Any]:
    for key in schema.ci_class(ci.cls).identity:
        if all(ci.attrs.get(a) not in (None, "", []) for a in key):
            return {a: ci.attrs[a] for a in key}
    raise BadInputError(f"CI {ci.id} has no identity attributes to write it by")


@router.patch("/{ref}", response_model=CIOut, summary="Set attributes of a CI (as the manual source)",
              responses=responses(404, 409, 412))
def update_ci(st: StateDep, who: Operator, ref: str, body: CIPatch,
              if_match: Annotated[str | None, Header(description="An ETag from GET: refuse if the CI changed.")]
              = None) -> JSONResponse:
    ci = find_ci(st.store, st.schema, who, ref)
    check_if_match(if_match, ci)
    if "ref" in body.attrs or "class" in body.attrs:
        raise BadInputError("attrs: 'ref' and 'class' are not attributes")
    attrs = {**_identity_attrs(st.schema, ci), **body.attrs}
    _check_keys(st.store, st.schema, ci.cls, attrs, ci.id)
    _manual_write(st, who, ci.cls, attrs, f"PATCH /cis/{ci.id}", _Guarded(st.store, ci.id, if_match))
    after = st.store.get_ci(ci.id)
    assert after is not None
    return JSONResponse(ci_dict(after), headers={"ETag": etag_of(after)})


@router.delete("/{ref}", response_model=CIOut, summary="Retire a CI and its relationships",
               responses=responses(404, 412))
def retire(st: StateDep, who: Operator, ref: str,
           if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
    """A ``manual`` batch retiring the CI and its live relationships, through ``ingest`` like every write."""
    ci = find_ci(st.store, st.schema, who, ref)
    check_if_match(if_match, ci)
    result = retire_ci(cast(GraphStore, _Guarded(st.store, ci.id, if_match)), st.schema, ci.id, actor=who.name,
                       config=st.config, origin=f"DELETE /cis/{ci.id}")
    st.metrics.ingested("manual", result)
    st.impact.poke()
    after = st.store.get_ci(ci.id)
    assert after is not None
    return JSONResponse(ci_dict(after), headers={"ETag": etag_of(after)})


@router.get("/{ref}/provenance", summary="Every source's value of every attribute, and the CI's sightings",
            responses=responses(404))
def provenance(st: StateDep, who: Viewer, ref: str) -> dict[str, Any]:
    ci = find_ci(st.store, st.schema, who, ref)
    return {"id": ci.id,
            "attributes": {a: {s: {"value": v.value, "run_id": v.run_id, "set_at": v.set_at} for s, v in srcs.items()}
                           for a, srcs in ci.provenance.items()},
            "winners": {a: next((s for s, v in ci.provenance.get(a, {}).items() if v.value == val), None)
                        for a, val in ci.attrs.items()},
            "sightings": [asdict(s) for s in ci.sightings.values()]}


@router.get("/{ref}/history", response_model=list[EventOut], summary="What changed on a CI (and what it depends on)",
            responses=responses(404))
def history(st: StateDep, who: Viewer, ref: str,
            since: Annotated[str | None, Query(description="A span like 7d or an ISO time.")] = None,
            until: Annotated[str | None, Query(description="ISO time.")] = None,
            depth: Annotated[int, Query(ge=0, le=5, description="Also what it depends on, this many hops.")] = 0,
            limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> list[dict[str, Any]]:
    ci = find_ci(st.store, st.schema, who, ref)
    scope = dependencies(st.store, st.schema, ci.id, depth) if depth else {ci.id: 0}
    events = ci_events(st.store, who, list(scope), parse_since(since) if since else None,
                       parse_time(until) if until else None)
    return [asdict(e) for e in events[-limit:]]


@router.get("/{ref}/as-of", summary="A CI and its relationships as they were at a past time",
            responses=responses(404))
def as_of(st: StateDep, who: Viewer, ref: str,
          at: Annotated[str, Query(description="ISO time, e.g. 2026-11-20T02:00.")]) -> dict[str, Any]:
    ci = find_ci(st.store, st.schema, who, ref)
    return asdict(ci_as_of(st.store, ci.id, parse_time(at)))


@router.get("/{ref}/relationships", response_model=list[RelOut], summary="Relationships of a CI",
            responses=responses(404))
def relationships(st: StateDep, who: Viewer, ref: str,
                  type: str | None = None,
                  direction: Annotated[str, Query(pattern="^(in|out|both)$")] = "both",
                  include_retired: bool = False,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                  cursor: str | None = None) -> list[dict[str, Any]]:
    ci = find_ci(st.store, st.schema, who, ref)
    if type is not None:
        st.schema.rel_type(type)
    rels = ci_relationships(st.store, who, ci.id, type, direction, include_retired, limit, decode_cursor(cursor))
    return [rel_dict(r) for r in rels]
