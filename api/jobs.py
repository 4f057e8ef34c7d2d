"""Background jobs of the API: discovery runs (``POST /runs``) and imports (``POST /imports``), one thread each.

The run's own record (``DiscoveryRunRecord``, saved at its start and end by the runner) is the
durable status; the job table adds whether the thread is still going and how it ended, for this
server's lifetime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Job:
    id: str
    kind: str
    state: str = "running"  # running, finished, failed
    error: str | None = None
    result: dict[str, Any] | None = None  # what the work returned (an import's summary)


class JobRunner:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, job_id: str, kind: str, work: Callable[[], dict[str, Any] | None]) -> Job:
        job = Job(job_id, kind)

        def run() -> None:
            try:
                job.result = work()
                job.state = "finished"
            except Exception as exc:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
                job.result = getattr(exc, "job_result", None)  # e.g. an import's per-row errors

        thread = threading.Thread(target=run, name=f"cmdb-job-{job_id}", daemon=True)
        with self._lock:
            self._jobs[job_id] = job
            self._threads.append(thread)
        thread.start()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def join(self, timeout: float = 30.0) -> None:
        for t in list(self._threads):
            t.join(timeout)
