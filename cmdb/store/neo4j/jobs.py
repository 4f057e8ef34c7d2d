"""Background jobs on Neo4j (the ``JobStore`` capability of ``cmdb.store.jobs`` as a mixin of ``Neo4jStore``).

One ``:CmdbJob`` node per job (a label no CI class takes), unique by id; the constraint and the
index on ``created_at`` are created with the first job, so stores that never serve the API are left
as they were. Params and result are JSON text. Job writes touch only job nodes, not the store's
batch lock, so a heartbeat never waits behind a batch.
"""

from __future__ import annotations

import json
from typing import Any

from cmdb.errors import BadInputError, StoreError
from cmdb.store.jobs import END_STATES, JobQuery, JobRecord, reported_state
from cmdb.store.neo4j.connection import Neo4jConnection

_FIELDS = ("id", "kind", "actor", "created_at", "owner", "heartbeat_at", "state", "params", "finished_at",
           "error", "result")
_SCHEMA = (
    "CREATE CONSTRAINT cmdb_job_id IF NOT EXISTS FOR (j:CmdbJob) REQUIRE j.id IS UNIQUE",
    "CREATE INDEX cmdb_job_created IF NOT EXISTS FOR (j:CmdbJob) ON (j.created_at)",
)


def _record(props: dict[str, Any], cutoff: str | None) -> JobRecord:
    values: dict[str, Any] = {f: props.get(f) for f in _FIELDS}
    values["params"] = json.loads(str(values["params"] or "{}"))
    values["result"] = None if values["result"] is None else json.loads(str(values["result"]))
    values["state"] = reported_state(str(values["state"]), str(values["heartbeat_at"]), cutoff)
    return JobRecord(**values)


class Neo4jJobs(Neo4jConnection):
    """Background jobs' status, shared by every server process on the store."""

    _job_schema_ready = False

    def create_job(self, job: JobRecord) -> None:
        if not self._job_schema_ready:
            for statement in _SCHEMA:
                self._autocommit(statement, "creating the job constraint")
            self._job_schema_ready = True
        props = {f: getattr(job, f) for f in _FIELDS}
        props["params"] = json.dumps(job.params, sort_keys=True)
        props["result"] = None if job.result is None else json.dumps(job.result, sort_keys=True)
        try:
            rows = self._write(
                "OPTIONAL MATCH (old:CmdbJob {id: $props.id}) WITH old WHERE old IS NULL"
                " CREATE (j:CmdbJob) SET j = $props RETURN count(j) AS n",
                props={k: v for k, v in props.items() if v is not None},
            )
        except StoreError as exc:
            if "already exists" not in str(exc):
                raise
            rows = []
        if not rows or int(rows[0]["n"]) == 0:
            raise BadInputError(f"a job with id {job.id!r} exists already; start it under a new id")

    def finish_job(self, job_id: str, state: str, at: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None) -> bool:
        if state not in END_STATES:
            raise BadInputError(f"job {job_id!r}: a job ends as {' or '.join(END_STATES)}, not {state!r}")
        rows = self._write(
            "MATCH (j:CmdbJob {id: $id}) WHERE j.state = 'running'"
            " SET j.state = $state, j.finished_at = $at, j.result = $result, j.error = $error RETURN count(j) AS n",
            id=job_id, state=state, at=at, error=error,
            result=None if result is None else json.dumps(result, sort_keys=True),
        )
        return bool(rows) and int(rows[0]["n"]) > 0

    def heartbeat_jobs(self, owner: str, at: str) -> int:
        rows = self._write("MATCH (j:CmdbJob {owner: $owner}) WHERE j.state = 'running'"
                           " SET j.heartbeat_at = $at RETURN count(j) AS n", owner=owner, at=at)
        return int(rows[0]["n"]) if rows else 0

    def _jobs_where(self, where: list[str], cutoff: str | None, limit: int | None, params: dict[str, Any]
                    ) -> list[JobRecord]:
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self._read(f"MATCH (j:CmdbJob){clause} RETURN j {{.*}} AS j ORDER BY j.created_at DESC, j.id DESC{tail}",
                          **params)
        return [_record(r["j"], cutoff) for r in rows]

    def get_job(self, job_id: str, stale_before: str | None = None) -> JobRecord | None:
        found = self._jobs_where(["j.id = $id"], stale_before, None, {"id": job_id})
        return found[0] if found else None

    def list_jobs(self, query: JobQuery) -> list[JobRecord]:
        where: list[str] = []
        params: dict[str, Any] = {"cutoff": query.stale_before}
        for name, value in (("kind", query.kind), ("actor", query.actor)):
            if value is not None:
                where.append(f"j.{name} = ${name}")
                params[name] = value
        if query.ids is not None:
            where.append("j.id IN $ids")
            params["ids"] = list(query.ids)
        if query.state == "abandoned":
            where.append("j.state = 'running' AND $cutoff IS NOT NULL AND j.heartbeat_at < $cutoff")
        elif query.state == "running" and query.stale_before is not None:
            where.append("j.state = 'running' AND j.heartbeat_at >= $cutoff")
        elif query.state is not None:
            where.append("j.state = $state")
            params["state"] = query.state
        if query.after is not None:
            where.append("(j.created_at < $after_at OR (j.created_at = $after_at AND j.id < $after_id))")
            params["after_at"], params["after_id"] = query.after
        return self._jobs_where(where, query.stale_before, query.limit, params)
