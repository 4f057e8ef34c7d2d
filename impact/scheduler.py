"""``cmdb scheduler``: the long-running process that fires the configured jobs on their cron expressions.

Cron expressions are parsed and stepped by ``croniter`` (five fields, or six with seconds first).
Several schedulers may run on one store: before a job runs, its scheduler takes the job's lease in the
store (``job:<name>``) for ``lease_seconds``; when the job ends the lease is cut to just before the
occurrence after the one it ran (``LEASE_MARGIN``), so a second scheduler firing the same occurrence finds
it held and skips it, and whoever comes first takes the next one. The cut lease stays in the store even
when that moment has already passed (a job that overran): deleting it would let a late scheduler take
the occurrence again. A scheduler that fires an occurrence so late that its lease may have lapsed
(within ``LEASE_MARGIN`` of the next one, e.g. on a busy machine) cannot tell whether it ran: it skips it
(``late``), and the next occurrence, due at once, does its work. SIGTERM (or SIGINT) lets the job in
flight finish, then the scheduler exits. The configuration is validated in full before anything starts
(``impact.automation_config``): a scheduler never runs half-configured.

Every job run is one JSON line on stdout: job, fire time, holder, outcome, summary.

Unless the configuration has a ``prune`` job, a scheduler adds one named ``retention`` on
``retention.schedule`` (daily at 03:30 by default; ``cmdb.retention``), so a running system prunes its old
operational records by itself; ``--once`` runs the configured jobs only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, TextIO

from croniter import croniter

from cmdb.errors import CmdbError
from cmdb.store.base import GraphStore, iso
from impact.automation_config import AutomationConfig, JobConfig
from impact.scheduler_jobs import REGISTRY

log = logging.getLogger("cmdb.scheduler")
LEASE_MARGIN = timedelta(seconds=0.5)


def cron_iter(expression: str, start: datetime) -> croniter:
    return croniter(expression, start, second_at_beginning=len(expression.split()) == 6)


def next_fire(expression: str, after: datetime) -> datetime:
    nxt: datetime = cron_iter(expression, after).get_next(datetime)
    return nxt if nxt.tzinfo else nxt.replace(tzinfo=UTC)


@dataclass
class ScheduledJob:
    name: str
    config: JobConfig
    due: datetime
    implicit: bool = False  # added by the scheduler itself (retention), not in the configuration


RETENTION_JOB = "retention"


def retention_job(config: AutomationConfig) -> JobConfig | None:
    """The daily prune a running scheduler adds when the configuration has no prune job of its own."""
    schedule = config.retention.schedule
    if schedule is None or any(j.kind == "prune" for j in config.scheduler.jobs.values()):
        return None
    return JobConfig(kind="prune", cron=schedule)


class Scheduler:
    def __init__(self, store: GraphStore, store_url: str, config: AutomationConfig, holder: str | None = None,
                 clock: Callable[[], datetime] | None = None, out: TextIO | None = None) -> None:
        self.store, self.store_url, self.config = store, store_url, config
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock or (lambda: datetime.now(UTC))
        self.out = out or sys.stdout
        self.stopping = threading.Event()
        now = self.clock()
        self.jobs = [ScheduledJob(name, job, next_fire(job.cron, now)) for name, job in config.scheduler.jobs.items()]
        if not self.jobs:
            raise CmdbError(f"{config.origin}: scheduler.jobs is empty; nothing to schedule")
        extra = retention_job(config)
        if extra is not None:
            name = RETENTION_JOB if RETENTION_JOB not in config.scheduler.jobs else f"{RETENTION_JOB}:prune"
            self.jobs.append(ScheduledJob(name, extra, next_fire(extra.cron, now), implicit=True))

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def emit(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self.out.flush()

    def run_job(self, job: ScheduledJob, fire_time: datetime, skip_if_late: bool = True) -> dict[str, Any] | None:
        """Run one occurrence under the job's lease; None when another scheduler holds it (or it fired too late).
        ``skip_if_late=False``: ``fire_time`` is not an occurrence but now (``--once``)."""
        lease = f"job:{job.name}"
        lapses = next_fire(job.config.cron, fire_time) - LEASE_MARGIN  # when this occurrence's lease lapses
        now = self.clock()
        if skip_if_late and now >= lapses:  # whoever ran it may have let the lease lapse: it could run twice
            self.emit({"job": job.name, "fire_time": iso(fire_time), "holder": self.holder, "outcome": "skipped",
                       "reason": f"late: fired at {iso(now)}, the next occurrence is due; it runs then"})
            return None
        # The same ``now`` as above: the store compares the lease's expiry with it, however long this call waits.
        if not self.store.acquire_lease(lease, self.holder, job.config.lease_seconds, now):
            self.emit({"job": job.name, "fire_time": iso(fire_time), "holder": self.holder, "outcome": "skipped",
                       "reason": "lease held by another scheduler"})
            return None
        record: dict[str, Any] = {"job": job.name, "kind": job.config.kind, "fire_time": iso(fire_time),
                                  "holder": self.holder}
        try:
            summary = REGISTRY[job.config.kind](self.store, self.store_url, self.config, job.config, self.clock())
            record.update(outcome="ok", summary=summary)
        except CmdbError as exc:
            record.update(outcome="error", error=str(exc))
            log.error("job %s failed: %s", job.name, exc)
        except Exception as exc:  # a bug in one job must not stop the others: recorded with its type
            record.update(outcome="error", error=f"{type(exc).__name__}: {exc}")
            log.exception("job %s crashed", job.name)
        finally:
            now = self.clock()  # a negative hold (the job overran) leaves the lease lapsed at ``lapses``, not gone
            self.store.renew_lease(lease, self.holder, (lapses - now).total_seconds(), now)
        record["finished_at"] = iso(self.clock())
        self.emit(record)
        return record

    def run_once(self) -> list[dict[str, Any] | None]:
        """Every configured job once, now (``cmdb scheduler --once``); the implicit retention job runs on
        its schedule only (``cmdb prune`` prunes by hand)."""
        now = self.clock()
        return [self.run_job(job, now, skip_if_late=False) for job in self.jobs if not job.implicit]

    def run(self) -> None:
        """Fire jobs as they fall due until stopped; a job in flight always finishes."""
        tick = self.config.scheduler.tick_seconds
        self.emit({"scheduler": "started", "holder": self.holder,
                   "jobs": {j.name: {"cron": j.config.cron, "next": iso(j.due)} for j in self.jobs}})
        while not self.stopping.is_set():
            now = self.clock()
            for job in sorted(self.jobs, key=lambda j: j.due):
                if self.stopping.is_set():
                    break
                if job.due <= now:
                    fire = job.due
                    try:
                        self.run_job(job, fire)
                    except CmdbError as exc:  # the store is unreachable for the lease: try the next occurrence
                        self.emit({"job": job.name, "fire_time": iso(fire), "holder": self.holder,
                                   "outcome": "error", "error": str(exc)})
                    job.due = next_fire(job.config.cron, max(self.clock(), fire))
            wait = min((j.due for j in self.jobs), default=now) - self.clock()
            self.stopping.wait(max(0.01, min(tick, wait.total_seconds())))
        self.emit({"scheduler": "stopped", "holder": self.holder})
