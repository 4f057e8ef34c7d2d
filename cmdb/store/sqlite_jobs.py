"""Background jobs on SQLite (the ``JobStore`` capability of ``cmdb.store.jobs`` as a mixin of ``SqliteStore``).

The table is created by the first job written, so opening a store stays read-only and stores that
never serve the API carry no job table. Every write is one short transaction; a heartbeat is one
``UPDATE`` for all running jobs of a process (a partial index on running jobs by owner finds them).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cmdb.errors import BadInputError, StoreError
from cmdb.store.jobs import END_STATES, JobQuery, JobRecord, reported_state
from cmdb.store.sqlite_access import begin_write, write_lock

JOB_DDL = (
    "CREATE TABLE IF NOT EXISTS job(id TEXT PRIMARY KEY, kind TEXT NOT NULL, actor TEXT NOT NULL,"
    " created_at TEXT NOT NULL, owner TEXT NOT NULL, heartbeat_at TEXT NOT NULL, state TEXT NOT NULL,"
    " params TEXT NOT NULL, finished_at TEXT, error TEXT, result TEXT)",
    "CREATE INDEX IF NOT EXISTS job_created ON job(created_at, id)",
    "CREATE INDEX IF NOT EXISTS job_running_owner ON job(owner) WHERE state = 'running'",
)
_COLUMNS = ("id", "kind", "actor", "created_at", "owner", "heartbeat_at", "state", "params", "finished_at",
            "error", "result")


def _record(row: sqlite3.Row, cutoff: str | None) -> JobRecord:
    values = {c: row[c] for c in _COLUMNS}
    values["params"] = json.loads(values["params"])
    values["result"] = None if values["result"] is None else json.loads(values["result"])
    values["state"] = reported_state(values["state"], values["heartbeat_at"], cutoff)
    return JobRecord(**values)


class SqliteJobs:
    """Mixin: needs the store's ``_db`` (write connection), ``_lock``, ``_rows`` and ``path``."""

    _db: sqlite3.Connection
    _lock: Any  # the store's RLock
    path: str

    if TYPE_CHECKING:
        def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]: ...

    def _job_write(self, sql: str, params: tuple[Any, ...], doing: str) -> int:
        with write_lock(self._lock, self.path, doing):
            begin_write(self._db, self.path, doing)
            try:
                for ddl in JOB_DDL:
                    self._db.execute(ddl)
                n = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
                return int(n)
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"{doing} in {self.path} failed: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def create_job(self, job: JobRecord) -> None:
        values = [getattr(job, c) for c in _COLUMNS]
        values[_COLUMNS.index("params")] = json.dumps(job.params, sort_keys=True)
        values[_COLUMNS.index("result")] = None if job.result is None else json.dumps(job.result, sort_keys=True)
        try:
            self._job_write(f"INSERT INTO job({', '.join(_COLUMNS)}) VALUES({', '.join('?' * len(_COLUMNS))})",
                            tuple(values), f"recording job {job.id!r}")
        except sqlite3.IntegrityError:
            raise BadInputError(f"a job with id {job.id!r} exists already; start it under a new id") from None

    def finish_job(self, job_id: str, state: str, at: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None) -> bool:
        if state not in END_STATES:
            raise BadInputError(f"job {job_id!r}: a job ends as {' or '.join(END_STATES)}, not {state!r}")
        text = None if result is None else json.dumps(result, sort_keys=True)
        return self._job_write(
            "UPDATE job SET state=?, finished_at=?, result=?, error=? WHERE id=? AND state='running'",
            (state, at, text, error, job_id), f"recording the end of job {job_id!r}") > 0

    def heartbeat_jobs(self, owner: str, at: str) -> int:
        return self._job_write("UPDATE job SET heartbeat_at=? WHERE owner=? AND state='running'", (at, owner),
                               "refreshing the heartbeat of running jobs")

    def _job_rows(self, where: list[str], params: list[Any], cutoff: str | None, limit: int | None) -> list[JobRecord]:
        sql = f"SELECT * FROM job{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            rows = self._rows(sql, params)
        except StoreError as exc:
            if "no such table" in str(exc):
                return []
            raise
        return [_record(r, cutoff) for r in rows]

    def get_job(self, job_id: str, stale_before: str | None = None) -> JobRecord | None:
        found = self._job_rows(["id=?"], [job_id], stale_before, None)
        return found[0] if found else None

    def list_jobs(self, query: JobQuery) -> list[JobRecord]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("kind", query.kind), ("actor", query.actor)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        if query.ids is not None:
            where.append("id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(query.ids))
        if query.state is not None:
            cutoff = query.stale_before
            if query.state == "abandoned":
                where.append("state='running' AND heartbeat_at < ?" if cutoff is not None else "0")
                params.extend([cutoff] if cutoff is not None else [])
            elif query.state == "running" and cutoff is not None:
                where.append("state='running' AND heartbeat_at >= ?")
                params.append(cutoff)
            else:
                where.append("state=?")
                params.append(query.state)
        if query.after is not None:
            where.append("(created_at, id) < (?, ?)")
            params.extend(query.after)
        return self._job_rows(where, params, query.stale_before, query.limit)
