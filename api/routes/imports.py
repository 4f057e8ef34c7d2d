"""``/imports``: a mapped tabular file uploaded and imported in the background, as ``cmdb import --mapping``.

The upload is ``multipart/form-data``: ``file`` (CSV, JSON, JSON Lines or YAML, told by its suffix),
``mapping`` (the name of a mapping in the server's ``CMDB_MAPPINGS_DIR``, without ``.yaml``), and
optionally ``dry_run`` and ``skip_invalid``. Mappings come from that directory, not from the upload,
because a mapping chooses the source, and so the precedence the import's values get: the server's
operator decides which sources an uploaded file may speak for. The file and mapping are checked
before the answer (422 for a bad one, 404 for an unknown mapping); the import itself runs as a job,
with ``TableImport`` (the code of ``cmdb import``), and ``GET /imports/{id}`` shows its state and
summary, the dry-run plan, or the rows that kept it from writing anything. A partition-limited token's
batches pass the same check as ``POST /batches`` (all of them before the first is written).

The job's status lives in the store (``api.jobs``), so any worker of any server on the store
answers ``GET /imports/{id}``, also after a restart; an import whose server process died shows as
``abandoned``. What an import wrote is in the run ledger (``GET /runs/ledger``) under its id.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Principal, require
from api.problems import responses
from api.reads import check_batch_allowed
from api.state import ApiState, api_state
from cmdb.batch import Batch
from cmdb.errors import BadInputError, CmdbError, NotFoundError
from cmdb.store.jobs import JobRecord
from importers.table_import import ImportReport, RowsRejectedError, TableImport
from importers.tabular import file_format

router = APIRouter(prefix="/imports", tags=["Imports"], responses=responses(400, 401, 403, 413, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_ERRORS = 1000  # per-row errors kept in a status answer


class ImportOut(BaseModel):
    id: str
    state: str  # running, finished, failed, abandoned (the server process running it died)
    file: str
    mapping: str
    dry_run: bool
    actor: str
    error: str | None = None
    result: dict[str, Any] | None = None  # summary, dry-run report, or {"errors": [...]} of refused rows


class ImportRefusedError(CmdbError):
    """Rows or batches that kept an import from writing anything; ``job_result`` names them."""

    def __init__(self, message: str, job_result: dict[str, Any]) -> None:
        super().__init__(message)
        self.job_result = job_result


def _mapping_path(st: ApiState, name: str) -> Path:
    folder = st.settings.mappings_dir
    if folder is None:
        raise BadInputError("this server takes no imports: start it with CMDB_MAPPINGS_DIR naming a directory "
                            "of mapping files")
    if not NAME.match(name):
        raise BadInputError(f"mapping {name!r}: give a mapping's file name without .yaml (letters, digits, . _ -)")
    for suffix in (".yaml", ".yml"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    known = sorted(p.stem for p in folder.glob("*.y*ml"))
    raise NotFoundError(f"no mapping {name!r} in this server's mappings; it has: {', '.join(known) or 'none'}")


def _upload_name(file: UploadFile) -> str:
    name = Path(file.filename or "").name
    if not NAME.match(name):
        raise BadInputError(f"file name {file.filename!r}: upload a file named like hosts.csv (letters, digits, "
                            ". _ -); its suffix says its format")
    return name


def _named(texts: list[str], folder: Path) -> list[str]:
    """Errors name the uploaded file by its own name, not the server's temporary path."""
    return [t.replace(f"{folder}/", "") for t in texts[:MAX_ERRORS]]


def report_result(report: ImportReport, dry_run: bool, folder: Path) -> dict[str, Any]:
    """The answer of ``cmdb import --json`` for ``report``."""
    from importers.cli import dry_run_items

    base = {"file": Path(report.file).name, "source": report.source, "rows": report.rows,
            "rejected": report.rejected, "errors": _named(report.problems, folder)}
    if dry_run:
        counts = {a: report.planned.get(a, 0) for a in ("create", "update", "unchanged", "conflict")}
        return {**base, "dry_run": True, "notes": report.notes, "counts": counts,
                "rels_created": report.planned.get("rels_created", 0), "items": dry_run_items(report),
                "items_not_shown": report.omitted}
    return {**base, **report.totals, "batches": len(report.run_ids), "run_ids": report.run_ids}


def _admit(st: ApiState, who: Principal) -> Any:
    if who.partitions is None:
        return None

    def admit(batch: Batch) -> None:
        try:
            check_batch_allowed(st.store, st.schema, who, batch)
        except HTTPException as exc:
            raise ImportRefusedError(f"{batch.origin}: {exc.detail}", {"errors": [str(exc.detail)]}) from None

    return admit


def import_out(job: JobRecord) -> dict[str, Any]:
    return {"id": job.id, "state": job.state, "error": job.error, "result": job.result, "actor": job.actor,
            "file": job.params.get("file", ""), "mapping": job.params.get("mapping", ""),
            "dry_run": bool(job.params.get("dry_run"))}


@router.post("", status_code=202, response_model=ImportOut, responses=responses(404),
             summary="Upload a tabular file and import it with a named mapping, in the background")
def start_import(
    st: StateDep, who: Annotated[Principal, Depends(require("operator"))],
    file: Annotated[UploadFile, File(description="CSV, JSON, JSON Lines or YAML; the suffix says which.")],
    mapping: Annotated[str, Form(description="A mapping's name in the server's CMDB_MAPPINGS_DIR.")],
    dry_run: Annotated[bool, Form(description="Plan only: what would change and why; write nothing.")] = False,
    skip_invalid: Annotated[bool, Form(description="Write the good rows; list the bad ones in the result.")]
    = False,
) -> JSONResponse:
    from importers.mapping import load_mapping

    spec = load_mapping(_mapping_path(st, mapping), st.schema)
    name = _upload_name(file)
    file_format(Path(name))  # an unknown suffix is a 422 now, not a failed job
    folder = Path(tempfile.mkdtemp(prefix="cmdb-upload-"))
    try:
        with (folder / name).open("wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        job_import = TableImport(st.store, folder / name, spec, config=st.config, admit=_admit(st, who),
                                 actor=who.name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    params = {"file": name, "mapping": mapping, "dry_run": dry_run}

    def work() -> dict[str, Any]:
        try:
            rejects = folder / "rejects.csv" if skip_invalid else None
            try:
                report = job_import.run(dry_run=dry_run, rejects=rejects)
            except RowsRejectedError as exc:
                raise ImportRefusedError(f"{exc.count} bad row(s); nothing was written",
                                         {"rejected": exc.count, "errors": _named(exc.problems, folder)}) from None
            return report_result(report, dry_run, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if not dry_run:
                st.impact.poke()

    try:
        job = st.jobs.start(job_import.run_id, "import", who.name, work, params)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return JSONResponse(import_out(job), status_code=202, headers={"Location": f"/api/v1/imports/{job.id}"})


@router.get("/{import_id}", response_model=ImportOut, responses=responses(404),
            summary="An import's state and its summary, dry-run report or per-row errors")
def get_import(st: StateDep, who: Annotated[Principal, Depends(require("operator"))], import_id: str
               ) -> dict[str, Any]:
    job = st.jobs.get(import_id)
    if job is None or job.kind != "import" or (who.partitions is not None and job.actor != who.name):
        raise NotFoundError(f"no import {import_id!r}; GET /api/v1/jobs?kind=import lists the imports you may see")
    return import_out(job)
