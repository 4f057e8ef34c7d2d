"""The scheduler's job registry: what each job kind of the configuration does when it fires.

``expiry_check`` runs one expiry cycle, ``licence_check`` the licence compliance check, ``deliver``
drains the outbox, ``prune`` forgets old operational records (``cmdb.retention``), and the discovery kinds
(``scan``, ``snmp``, ``ssh``, ``devices``, ``aws``) run the discovery command line as a child process with the
job's targets, credential profiles and options, into the scheduler's store. A child process keeps a
discovery run's sockets, threads and memory out of the long-running scheduler, and the command line
is the interface discovery already guarantees (outcomes per target, a run record). This registry is
the one place the scheduler reaches discovery; ``cmdb/`` never does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cmdb.errors import CmdbError
from cmdb.store.base import GraphStore
from impact.automation_config import AutomationConfig, JobConfig
from impact.delivery import deliver_due
from impact.expiry_tasks import run_expiry_cycle

JobFn = Callable[[GraphStore, str, AutomationConfig, JobConfig, datetime], dict[str, Any]]

DISCOVERY_COMMANDS: dict[str, list[str]] = {
    "scan": ["scan"], "snmp": ["discover", "snmp"], "ssh": ["discover", "ssh"], "devices": ["discover", "devices"],
    "aws": ["discover", "aws"],
}


class JobFailedError(CmdbError):
    """A scheduled job ended in error (the scheduler logs it and carries on with the next)."""


def expiry_job(store: GraphStore, store_url: str, config: AutomationConfig, job: JobConfig,
               now: datetime) -> dict[str, Any]:
    return run_expiry_cycle(store, now, config, dry_run=bool(job.options.get("dry_run", False))).summary()


def licence_job(store: GraphStore, store_url: str, config: AutomationConfig, job: JobConfig,
                now: datetime) -> dict[str, Any]:
    from impact.licences import check_compliance

    return check_compliance(store, now, config, dry_run=bool(job.options.get("dry_run", False))).summary()


def deliver_job(store: GraphStore, store_url: str, config: AutomationConfig, job: JobConfig,
                now: datetime) -> dict[str, Any]:
    total = {"sent": 0, "retrying": 0, "dead": 0}
    while True:  # everything due now, batch after batch
        rep = deliver_due(store, config, now)
        for k in total:
            total[k] += getattr(rep, k)
        if rep.sent == 0:
            return total


def prune_job(store: GraphStore, store_url: str, config: AutomationConfig, job: JobConfig,
              now: datetime) -> dict[str, Any]:
    from cmdb.retention import prune

    return prune(store, config.retention, now=now, dry_run=bool(job.options.get("dry_run", False))).summary()


def discovery_argv(kind: str, store_url: str, job: JobConfig) -> list[str]:
    """The ``cmdb`` command line of a discovery job: options become ``--name value`` flags."""
    argv = [sys.executable, "-m", "product.cli", "--store", store_url, *DISCOVERY_COMMANDS[kind], *job.targets]
    for profile in job.profiles:
        argv += ["--profile", profile]
    if job.credentials:
        argv += ["--credentials", job.credentials]
    for arn in job.role_arns:
        argv += ["--role-arn", arn]
    if job.regions:
        argv += ["--regions", ",".join(job.regions)]
    if job.all_regions:
        argv.append("--all-regions")
    if job.services:
        argv += ["--services", ",".join(job.services)]
    if job.endpoint_url:
        argv += ["--endpoint-url", job.endpoint_url]
    for name, value in job.options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return [*argv, "--json"]


def discovery_job(store: GraphStore, store_url: str, config: AutomationConfig, job: JobConfig,
                  now: datetime) -> dict[str, Any]:
    argv = discovery_argv(job.kind, store_url, job)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):  # 1: the run was made and recorded, some targets failed
        last = (proc.stderr.strip().splitlines() or ["no error output"])[-1]
        raise JobFailedError(f"{' '.join(DISCOVERY_COMMANDS[job.kind])} exited {proc.returncode}: {last}")
    try:
        record = json.loads(proc.stdout)
    except ValueError:
        return {"exit": 0}
    outcomes = record.get("outcomes", []) if isinstance(record, dict) else []
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[str(o.get("outcome"))] = counts.get(str(o.get("outcome")), 0) + 1
    return {"run_id": record.get("run_id") if isinstance(record, dict) else None, "outcomes": counts}


PROFILE_KIND = {"snmp": "snmp", "ssh": "ssh", "devices": "ssh"}


def check_jobs(config: AutomationConfig) -> None:
    """Before a scheduler starts: every discovery job's credential profiles exist and their secrets are
    readable now (a ``ConfigError`` naming the job otherwise), so none fails hours later for a typo."""
    import dataclasses

    from discovery.credentials import SecretRef, SshProfile, load_credentials

    for name, job in config.scheduler.jobs.items():
        kind = PROFILE_KIND.get(job.kind)
        if kind is None:
            continue
        try:
            for profile in load_credentials(job.credentials).pick(job.profiles, kind):
                for f in dataclasses.fields(profile):
                    ref = getattr(profile, f.name)
                    if isinstance(ref, SecretRef):
                        ref.resolve()
                if isinstance(profile, SshProfile):
                    profile.check_key_file()
        except CmdbError as exc:
            raise type(exc)(f"{config.origin}: scheduler.jobs.{name}: {exc}") from None


REGISTRY: dict[str, JobFn] = {
    "expiry_check": expiry_job,
    "licence_check": licence_job,
    "deliver": deliver_job,
    "prune": prune_job,
    **{kind: discovery_job for kind in DISCOVERY_COMMANDS},
}
