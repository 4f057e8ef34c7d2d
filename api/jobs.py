"""Background jobs of the API: discovery runs (``POST /runs``) and imports (``POST /imports``), one thread each.

A job's status lives in the store (``cmdb.store.jobs``), not in the process that took the POST: with
``cmdb serve --workers N``, or several servers on one store, any worker answers the status URL, and
a restarted server still knows how every job ended. The runner creates the job before its thread
starts, records its end (finished with its result, failed with the error), and while it has jobs
running refreshes their heartbeat every few seconds from one thread; a job whose process died is
reported ``abandoned`` once its heartbeat is older than ``stale_seconds`` (``CMDB_JOB_STALE_SECONDS``,
default 60: longer than a write may wait for SQLite's lock behind a big batch).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.errors import ConfigError
from cmdb.store.base import GraphStore, iso
from cmdb.store.jobs import JobQuery, JobRecord

log = logging.getLogger("cmdb.api.jobs")
DEFAULT_STALE_SECONDS = 60.0


def stale_seconds_from(text: str) -> float:
    """``CMDB_JOB_STALE_SECONDS``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"CMDB_JOB_STALE_SECONDS={text!r} must be a number of seconds above 0 (default "
                          f"{DEFAULT_STALE_SECONDS:g}): how long a running job may go without a heartbeat before "
                          "it is reported abandoned")
    return value


def process_owner() -> str:
    """host:pid:nonce of this process; the nonce tells a reused pid from the process that died."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    """Runs jobs on threads of this process and keeps their status in ``store``."""

    def __init__(self, store: GraphStore, stale_seconds: float = DEFAULT_STALE_SECONDS) -> None:
        self.store = store
        self.stale_seconds = stale_seconds
        self.heartbeat_seconds = max(0.2, min(5.0, stale_seconds / 4))
        self.owner = process_owner()
        self._threads: list[threading.Thread] = []
        self._running = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def now(self) -> str:
        return iso(datetime.now(UTC))

    def stale_before(self) -> str:
        return iso(datetime.now(UTC) - timedelta(seconds=self.stale_seconds))

    def start(self, job_id: str, kind: str, actor: str, work: Callable[[], dict[str, Any] | None],
              params: dict[str, Any] | None = None) -> JobRecord:
        """Record the job as running, then run ``work`` on a thread; its return value is the job's result.
        An exception fails the job with its text, and its ``job_result`` (an import's refused rows)."""
        now = self.now()
        job = JobRecord(job_id, kind, actor, now, self.owner, now, params=dict(params or {}))
        self.store.create_job(job)

        def run() -> None:
            state, result, error = "finished", None, None
            try:
                result = work()
            except Exception as exc:
                state, error = "failed", f"{type(exc).__name__}: {exc}"
                result = getattr(exc, "job_result", None)
            try:
                self.store.finish_job(job_id, state, self.now(), result=result, error=error)
            except Exception:  # the store is down: the job shows as abandoned once its heartbeat is stale
                log.exception("could not record the end of job %s", job_id)
            finally:
                with self._lock:
                    self._running -= 1

        thread = threading.Thread(target=run, name=f"cmdb-job-{job_id}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            self._running += 1
            if self._beat is None:
                self._beat = threading.Thread(target=self._heartbeat, name="cmdb-job-heartbeat", daemon=True)
                self._beat.start()
        thread.start()
        return job

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            with self._lock:
                busy = self._running > 0
            if busy:
                try:
                    self.store.heartbeat_jobs(self.owner, self.now())
                except Exception:  # retried on the next beat; a lasting failure reads as abandoned
                    log.exception("could not refresh the heartbeat of this server's jobs")

    def get(self, job_id: str) -> JobRecord | None:
        return self.store.get_job(job_id, self.stale_before())

    def list(self, query: JobQuery) -> list[JobRecord]:
        query.stale_before = self.stale_before()
        return self.store.list_jobs(query)

    def join(self, timeout: float = 30.0) -> None:
        """Wait for this process's jobs (at shutdown), then stop the heartbeat."""
        for t in list(self._threads):
            t.join(timeout)
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout)
