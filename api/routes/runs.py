"""``/runs``: discovery runs with per-target outcomes, and ``POST`` to start one as a background job.

A started run answers 202 at once with its status URL; the runner saves the run record when it
starts and ends (``GET /runs/{id}``), and the job's state (kept in the store, ``api.jobs``, so any
worker of any server on the store answers it) says whether it is still going, how it ended, or that
the process running it died (``abandoned``).
The run kind offered is a TCP connect scan of given targets (``cmdb scan``); ``allowed_networks``
of the settings bound where a run may go.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from api.auth import Principal, require
from api.problems import responses
from api.schemas import RunOut, RunStart
from api.state import ApiState, api_state
from api.visibility import checked_sink
from cmdb.errors import BadInputError, NotFoundError
from cmdb.store.base import DiscoveryRunRecord
from cmdb.store.jobs import JobQuery, JobRecord
from discovery.runner import new_run_id, run_discovery
from discovery.targets import expand_targets

router = APIRouter(prefix="/runs", tags=["Discovery runs"], responses=responses(400, 401, 403, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]


def run_dict(r: DiscoveryRunRecord, job: JobRecord | None) -> dict[str, Any]:
    return {**asdict(r), "counts": r.counts(), "job": job.state if job else None, "error": job.error if job else None}


@router.get("", response_model=list[RunOut], summary="Discovery runs, newest first")
def list_runs(st: StateDep, who: Viewer, method: str | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    runs = st.store.discovery_runs(method, limit)
    jobs = {j.id: j for j in st.jobs.list(JobQuery(ids=[r.run_id for r in runs], limit=len(runs)))} if runs else {}
    return [run_dict(r, jobs.get(r.run_id)) for r in runs]


@router.get("/ledger", summary="The ingest run ledger: every batch written, by source and scope")
def ledger(st: StateDep, who: Viewer, source: str | None = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    return [asdict(r) for r in st.store.runs(source, limit)]


@router.get("/{run_id}", response_model=RunOut, summary="One discovery run with each target's outcome",
            responses=responses(404))
def get_run(st: StateDep, who: Viewer, run_id: str) -> dict[str, Any]:
    record, job = st.store.get_discovery_run(run_id), st.jobs.get(run_id)
    if record is None:
        if job is None or job.kind == "import":
            raise NotFoundError(f"no discovery run {run_id!r}; GET /api/v1/runs lists them")
        # Started, but its thread has not saved the run record yet.
        record = DiscoveryRunRecord(run_id, job.kind, job.created_at, actor=job.actor, options=job.params)
    return run_dict(record, job)


def _allowed(st: ApiState, targets: list[str]) -> None:
    nets = st.settings.allowed_networks
    if nets is None:
        return
    for t in targets:
        try:
            addr = ipaddress.ip_address(t)
        except ValueError:
            raise BadInputError(f"target {t!r}: this server scans only addresses in "
                                f"{', '.join(str(n) for n in nets)}") from None
        if not any(addr in n for n in nets):
            raise BadInputError(f"target {t}: outside the networks this server may scan "
                                f"({', '.join(str(n) for n in nets)})")


@router.post("", status_code=202, response_model=RunOut, summary="Start a discovery run (a scan) in the background")
def start_run(st: StateDep, who: Annotated[Principal, Depends(require("operator"))], body: RunStart) -> JSONResponse:
    from discovery.certificates import SystemTrust
    from discovery.scan.collector import ScanCollector
    from discovery.scan.ports import DEFAULT_PORTS, WELL_KNOWN_TLS_PORTS, format_ports, parse_ports
    from discovery.scan.probe import ProbeSettings

    targets = expand_targets(body.targets, (), st.settings.max_run_targets)
    _allowed(st, targets)
    ports = parse_ports(body.ports, "ports") if body.ports else list(DEFAULT_PORTS)
    settings = ProbeSettings(ports=tuple(ports), tls_ports=WELL_KNOWN_TLS_PORTS, connect_timeout=body.timeout,
                             dns=body.dns)
    run_id = new_run_id(body.method)
    options = {"ports": format_ports(ports), "dns": body.dns, "timeout": body.timeout, "started_by": "api"}

    def work() -> None:
        collector = ScanCollector(settings, trust=SystemTrust.load())
        try:
            asyncio.run(run_discovery(collector, targets, st.store, concurrency=collector.target_concurrency(
                len(targets)), actor=who.name, options=options, schema=st.schema, config=st.config, run_id=run_id,
                sink=checked_sink(st.store, st.schema, st.config, who)))
        finally:
            collector.prober.close()
            st.impact.poke()

    job = st.jobs.start(run_id, body.method, who.name, work, options)
    record = DiscoveryRunRecord(run_id, body.method, job.created_at, actor=who.name, targets=targets, options=options)
    body_out = {**asdict(record), "counts": {}, "job": job.state, "error": None}
    return JSONResponse(body_out, status_code=202,
                        headers={"Location": f"/api/v1/runs/{run_id}"})

