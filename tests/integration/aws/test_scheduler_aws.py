"""An ``aws`` job of ``cmdb scheduler``: validated like the other kinds, and a ``--once`` run lands the estate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from moto_lab import ACCOUNT, Estate, MotoServer

from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.aws.services import SERVICES
from impact.automation_config import AWS_SERVICES, parse_config
from impact.scheduler_jobs import discovery_argv


def scheduler(tmp: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    conf = tmp / "cmdb.yaml"
    conf.write_text(config)
    return subprocess.run([sys.executable, "-m", "product.cli", "scheduler", *args], capture_output=True, text=True,
                          env={**os.environ, "CMDB_STORE": f"sqlite:///{tmp / 'cmdb.db'}", "CMDB_CONFIG": str(conf)},
                          timeout=180, check=False)


def test_the_scheduler_knows_every_aws_service() -> None:
    assert set(AWS_SERVICES) == set(SERVICES)


def test_an_aws_job_becomes_the_discover_aws_command_line() -> None:
    cfg = parse_config({"scheduler": {"jobs": {"cloud": {
        "kind": "aws", "cron": "0 3 * * *", "profiles": ["prod"], "role_arns": ["arn:aws:iam::210987654321:role/c"],
        "regions": ["us-east-1", "eu-west-1"], "services": ["ec2", "rds"], "endpoint_url": "http://127.0.0.1:9",
        "options": {"concurrency": 2}}}}})
    argv = discovery_argv("aws", "sqlite:///c.db", cfg.scheduler.jobs["cloud"])
    assert argv[3:] == ["--store", "sqlite:///c.db", "discover", "aws", "--profile", "prod", "--role-arn",
                        "arn:aws:iam::210987654321:role/c", "--regions", "us-east-1,eu-west-1", "--services",
                        "ec2,rds", "--endpoint-url", "http://127.0.0.1:9", "--concurrency", "2", "--json"]
    every = parse_config({"scheduler": {"jobs": {"all": {"kind": "aws", "cron": "0 3 * * *", "all_regions": True}}}})
    assert discovery_argv("aws", "sqlite:///c.db", every.scheduler.jobs["all"])[3:] == [
        "--store", "sqlite:///c.db", "discover", "aws", "--all-regions", "--json"]


@pytest.mark.parametrize(("job", "expected"), [
    ("{kind: aws, cron: '0 3 * * *', regions: [us-east-1], all_regions: true}",
     "scheduler.jobs.cloud: give regions or all_regions, not both"),
    ("{kind: aws, cron: '0 3 * * *', services: [ec2, dynamodb]}",
     "scheduler.jobs.cloud: services: unknown dynamodb; choose from ec2,"),
    ("{kind: aws, cron: '0 3 * * *', targets: [10.0.0.1]}", "scheduler.jobs.cloud: an aws job takes no targets"),
    ("{kind: aws, cron: '0 3 * * *', role_arns: [prod-admin]}",
     "scheduler.jobs.cloud: role_arns: 'prod-admin' is not a role ARN"),
    ("{kind: aws, cron: '0 3 * * *', endpoint_url: 127.0.0.1:5000}",
     "scheduler.jobs.cloud: endpoint_url: '127.0.0.1:5000' is not an http(s) URL"),
    ("{kind: scan, cron: '0 3 * * *', targets: [10.0.0.1], regions: [us-east-1]}",
     "scheduler.jobs.cloud: regions: only an aws job takes these"),
])
def test_a_bad_aws_job_names_the_job_and_nothing_starts(tmp_path: Path, job: str, expected: str) -> None:
    proc = scheduler(tmp_path, f"scheduler: {{jobs: {{cloud: {job}}}}}\n", "--once")
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and str(tmp_path / "cmdb.yaml") in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_scheduler_once_with_an_aws_job_lands_the_estate(tmp_path: Path, estate: Estate,
                                                        moto_server: MotoServer) -> None:
    proc = scheduler(tmp_path, f"""\
scheduler:
  jobs:
    cloud: {{kind: aws, cron: "0 3 * * *", profiles: [estate], regions: [us-east-1, eu-west-1],
             services: [ec2, elbv2], endpoint_url: "{moto_server.url}"}}
""", "--once")
    assert proc.returncode == 0, proc.stderr
    [record] = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert record["job"] == "cloud" and record["outcome"] == "ok", record
    assert record["summary"]["outcomes"] == {"ok": 4}  # (us-east-1, eu-west-1) x (ec2, elbv2)
    store = SqliteStore(tmp_path / "cmdb.db")
    try:
        instances = store.search(SearchQuery(classes=["CloudInstance"], limit=100)).items
        ids = {ci.attrs.get("cloud_instance_id") for ci in instances}
        assert ids >= {*estate.instances.values(), estate.eu_instance}
        assert {ci.attrs.get("account_id") for ci in instances} == {ACCOUNT}
        assert {ci.attrs.get("region") for ci in instances} == {"us-east-1", "eu-west-1"}
        [run] = store.discovery_runs(limit=5)
        assert run.method == "aws" and run.run_id == record["summary"]["run_id"]
    finally:
        store.close()
