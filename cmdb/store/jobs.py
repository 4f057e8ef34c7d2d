"""Background jobs in the store: what the API's imports and discovery runs are doing, seen by every process.

A job (an import, a discovery run) runs on one thread of one server process, but its status URL may
be asked of any worker of any server on the same store, and after a restart. So the status lives
here, not in the process: the runner creates the job before its thread starts and records how it
ended (``finished`` with its result, or ``failed`` with the error and, for an import, the rows that
kept it from writing).

A process that dies (killed, out of memory, the host gone) cannot say so. Its runner therefore
refreshes ``heartbeat_at`` of all its running jobs every few seconds (one write per process, not per
job), and a reader that finds a running job whose heartbeat is older than its ``stale_before`` reports
it ``abandoned``. That holds with several workers and several servers on one store and needs no
start-up clean-up; ``abandoned`` is a report, never stored, so a runner that was only held up (for
example waiting for SQLite's write lock behind a long load) and then records its end still wins. The
staleness limit has to exceed the longest wait for the write lock; readers on different hosts compare
with their own clocks, so it also has to exceed their skew.

Results are import summaries and run outcomes; they hold no secrets (credentials are referenced by
name and never reach a job). Contract tests: ``tests/contract/test_jobs_contract.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

JOB_STATES: tuple[str, ...] = ("running", "finished", "failed", "abandoned")
END_STATES: tuple[str, ...] = ("finished", "failed")  # what a runner records; abandoned is only reported


@dataclass
class JobRecord:
    """One background job. ``owner`` names the process running it (host:pid:nonce)."""

    id: str
    kind: str  # "import", or a discovery run's method ("scan")
    actor: str  # the token name that started it
    created_at: str
    owner: str
    heartbeat_at: str
    state: str = "running"  # running, finished, failed; abandoned when read with a stale heartbeat
    params: dict[str, Any] = field(default_factory=dict)  # what it was started with (file, mapping, ...)
    finished_at: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


@dataclass
class JobQuery:
    """Filters of ``list_jobs``; newest first, ``after`` is the (created_at, id) of the previous page's last."""

    stale_before: str | None = None  # None: no job is reported abandoned
    kind: str | None = None
    state: str | None = None  # one of JOB_STATES
    actor: str | None = None
    ids: list[str] | None = None
    after: tuple[str, str] | None = None
    limit: int = 50


def reported_state(state: str, heartbeat_at: str, cutoff: str | None) -> str:
    """The state a reader reports: a running job with a heartbeat older than ``cutoff`` is abandoned."""
    if state == "running" and cutoff is not None and heartbeat_at < cutoff:
        return "abandoned"
    return state


class JobStore(Protocol):
    """The job capability of every store (contract: ``tests/contract/test_jobs_contract.py``)."""

    def create_job(self, job: JobRecord) -> None:
        """Insert a new running job; an id already taken raises BadInputError."""

    def finish_job(self, job_id: str, state: str, at: str, *, result: dict[str, Any] | None = None,
                   error: str | None = None) -> bool:
        """Record the end of a running job (``state`` finished or failed); False when no running job has
        that id (unknown, or already ended: the first end wins)."""

    def heartbeat_jobs(self, owner: str, at: str) -> int:
        """Set ``heartbeat_at`` of every running job of ``owner``; how many there were."""

    def get_job(self, job_id: str, stale_before: str | None = None) -> JobRecord | None:
        """One job, with ``state`` abandoned when it runs with a heartbeat older than ``stale_before``."""

    def list_jobs(self, query: JobQuery) -> list[JobRecord]:
        """Jobs newest first (created_at, then id, descending), filtered and keyset-paged by ``query``."""
