"""``POST /batches``: the batch format of ``cmdb load`` over HTTP, atomic, with ``Idempotency-Key``.

Remote collectors (``--push``) and importers send here; the batch goes through ``ingest`` like any
other. With an ``Idempotency-Key`` the key is written in the batch's own transaction, so a retried
POST writes nothing twice and gets the first answer (``replayed: true``, header
``Idempotent-Replayed: true``); the key is per token, and reusing it for another body is a 422. A key
is remembered until pruned (``retention.idempotency_keys`` of the configuration, 7 days by default,
``cmdb.retention``); a key pruned is a new key: its batch is written again.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from api.auth import Principal, require
from api.problems import ApiProblem, responses
from api.reads import check_batch_allowed
from api.schemas import BATCH_EXAMPLE, BatchSummary
from api.state import ApiState, api_state
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.ingest_once import fingerprint, ingest_once

router = APIRouter(prefix="/batches", tags=["Batch ingest"], responses=responses(400, 401, 403, 413, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]


BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "description": "A batch in the format of `cmdb load` (see the README).",
               "properties": {"source": {"type": "string"}, "scope": {"type": "string"},
                              "complete": {"type": "boolean"}, "run_id": {"type": "string"},
                              "cis": {"type": "array", "items": {"type": "object"}},
                              "relationships": {"type": "array", "items": {"type": "object"}}},
               "required": ["source"]},
    "examples": {"batch": {"value": BATCH_EXAMPLE}}}}}}


@router.post("", response_model=BatchSummary, summary="Ingest one batch atomically (the format of cmdb load)",
             openapi_extra=BATCH_BODY)
async def post_batch(
    request: Request,
    st: StateDep,
    who: Annotated[Principal, Depends(require("collector"))],
    idempotency_key: Annotated[str | None, Header(max_length=200,
                                                  description="Retry-safe: a repeated key writes nothing twice"
                                                              " while it is kept (7 days by default).")]
    = None,
) -> JSONResponse:
    # The body is parsed here, not by a pydantic ``dict`` parameter: validating a 1,000-CI batch as
    # ``dict[str, Any]`` copies every value and cost a fifth of the ingest.
    try:
        doc = json.loads(await request.body())
    except ValueError as exc:
        raise ApiProblem(422, f"the body is not JSON: {exc}") from None
    return await anyio.to_thread.run_sync(_ingest, st, who, doc, idempotency_key)


def _ingest(st: ApiState, who: Principal, doc: Any, idempotency_key: str | None) -> JSONResponse:
    batch = Batch.from_dict(doc, origin="POST /batches")
    batch.actor = who.name
    check_batch_allowed(st.store, st.schema, who, batch)
    if idempotency_key is None:
        result = ingest(st.store, batch, schema=st.schema, config=st.config)
        body: dict[str, Any] = {"run_id": result.run_id, **result.summary(), "replayed": False}
        headers = {}
    else:
        first, record = ingest_once(st.store, batch, f"{who.name}\x1f{idempotency_key}", fingerprint(doc),
                                    schema=st.schema, config=st.config)
        result = first  # type: ignore[assignment]
        body = {**BatchSummary(**record.summary()).model_dump(), "replayed": first is None}
        headers = {"Idempotent-Replayed": "true"} if first is None else {}
    if result is not None:
        st.metrics.ingested(batch.source, result)
        st.impact.poke()
    return JSONResponse(body, headers=headers)
