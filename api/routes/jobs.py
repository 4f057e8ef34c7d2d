"""``/jobs``: the background jobs (imports, discovery runs) started over the API, newest first.

Statuses are read from the store (``api.jobs``), so every worker of every server on the store gives
the same list, and jobs started before a restart are still there; ``abandoned`` marks a job whose
server process died. Each entry names its status URL (``/imports/{id}`` or ``/runs/{id}``), which
holds the result; the list leaves results out so that a page stays small. Like the status URLs it
needs an operator token (the role that starts jobs); a partition-limited token sees only the jobs it
started, as ``GET /imports/{id}`` answers only those.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, require
from api.problems import responses
from api.state import ApiState, api_state
from cmdb.errors import BadInputError
from cmdb.store.jobs import JobQuery, JobRecord

router = APIRouter(prefix="/jobs", tags=["Jobs"], responses=responses(400, 401, 403, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]
Operator = Annotated[Principal, Depends(require("operator"))]

JOB_EXAMPLE: dict[str, Any] = {
    "id": "import-20261120T020000-1a2b3c", "kind": "import", "state": "finished", "actor": "deploy-bot",
    "created_at": "2026-11-20T02:00:00.000000Z", "finished_at": "2026-11-20T02:00:04.000000Z",
    "heartbeat_at": "2026-11-20T02:00:00.000000Z", "error": None,
    "params": {"file": "hosts.csv", "mapping": "assets", "dry_run": False},
    "status_url": "/api/v1/imports/import-20261120T020000-1a2b3c"}


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})
    id: str
    kind: str = Field(description="import, or a discovery run's method (scan).")
    state: str = Field(description="running, finished, failed, or abandoned (the process running it died).")
    actor: str = Field(description="The name of the token that started it.")
    created_at: str
    finished_at: str | None = None
    heartbeat_at: str = Field(description="When the process running it last said it was alive.")
    error: str | None = None
    params: dict[str, Any] = Field(description="What it was started with (file and mapping, scan options).")
    status_url: str = Field(description="The job's own status, with its result.")


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")


def status_url(job: JobRecord) -> str:
    return f"/api/v1/{'imports' if job.kind == 'import' else 'runs'}/{job.id}"


def job_out(job: JobRecord) -> dict[str, Any]:
    return {"id": job.id, "kind": job.kind, "state": job.state, "actor": job.actor, "created_at": job.created_at,
            "finished_at": job.finished_at, "heartbeat_at": job.heartbeat_at, "error": job.error,
            "params": job.params, "status_url": status_url(job)}


def encode_job_cursor(job: JobRecord) -> str:
    return base64.urlsafe_b64encode(json.dumps({"j": [job.created_at, job.id]}).encode()).decode().rstrip("=")


def decode_job_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["j"]
        if isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key):
            return key[0], key[1]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise BadInputError(f"cursor {cursor!r} is not one this server gave out; start without a cursor")


@router.get("", response_model=JobPage, summary="Background jobs (imports, discovery runs), newest first")
def list_jobs(
    st: StateDep, who: Operator,
    kind: Annotated[str | None, Query(description="import, or a run method such as scan.", max_length=100)] = None,
    state: Annotated[Literal["running", "finished", "failed", "abandoned"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> dict[str, Any]:
    actor = who.name if who.partitions is not None else None
    found = st.jobs.list(JobQuery(kind=kind, state=state, actor=actor, after=decode_job_cursor(cursor),
                                  limit=limit + 1))
    items = found[:limit]
    return {"items": [job_out(j) for j in items],
            "next_cursor": encode_job_cursor(items[-1]) if len(found) > limit else None}
