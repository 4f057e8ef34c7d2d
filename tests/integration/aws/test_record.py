"""``--record`` for AWS: each scope's reading (the boto3 answers and the calls that failed) is written
as JSON, and the collector's pure transform turns the recorded file into the very batch the live run
made; a partial scope's recording says which calls failed, and replays as a partial batch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from moto_lab import ACCOUNT, FAKE_ENV, DenyingEndpoint, Estate, MotoServer

from cmdb.batch import Batch
from discovery.aws.calls import AccountSpec, AwsConnection
from discovery.aws.collector import AwsCollector, plan
from discovery.observations import to_batch
from discovery.outcomes import Outcome
from discovery.runner import collect_target


def shape(batch: Batch | None) -> Any:
    assert batch is not None
    return (sorted((c.cls, c.ref or "", json.dumps(c.attrs, sort_keys=True)) for c in batch.cis),
            sorted((r.type, str(r.src), str(r.dst), json.dumps(r.attrs, sort_keys=True)) for r in batch.rels))


def replay(collector: AwsCollector, path: Path) -> Batch:
    seen = collector.transform(json.loads(path.read_text()))
    assert seen.facts is not None
    return to_batch(collector.source, seen.scope, seen.complete, seen.facts)


def test_a_recorded_scope_replays_as_the_same_batch(estate: Estate, moto_server: MotoServer, tmp_path: Path) -> None:
    conn = AwsConnection(endpoint_url=moto_server.url, max_attempts=2)
    aws_plan = plan(conn, [AccountSpec(profile="estate")], ["us-east-1"], ["ec2", "elbv2"])
    collector = AwsCollector(conn, aws_plan)
    for service in ("ec2", "elbv2"):
        target = f"aws:{ACCOUNT}:us-east-1:{service}"
        result = asyncio.run(collect_target(collector, target, record_dir=tmp_path))
        assert result.outcome == Outcome.OK and result.batch is not None and result.batch.complete
        recorded = tmp_path / "aws" / f"{target.replace(':', '_')}.json"
        text = recorded.read_text()
        assert FAKE_ENV["AWS_SECRET_ACCESS_KEY"] not in text  # no credential in a reading
        assert shape(replay(collector, recorded)) == shape(result.batch)
    ec2 = replay(collector, tmp_path / "aws" / f"aws_{ACCOUNT}_us-east-1_ec2.json")
    assert any(c.cls == "CloudInstance" for c in ec2.cis)  # the golden file exercises the transform


def test_a_partial_scope_records_its_failures(moto_server: MotoServer, tmp_path: Path) -> None:
    with DenyingEndpoint() as deny:
        conn = AwsConnection(endpoint_url={"eu-west-1": deny.url, "*": moto_server.url}, max_attempts=1)
        aws_plan = plan(conn, [AccountSpec(profile="estate")], ["eu-west-1"], ["ec2"])
        collector = AwsCollector(conn, aws_plan)
        target = f"aws:{ACCOUNT}:eu-west-1:ec2"
        result = asyncio.run(collect_target(collector, target, record_dir=tmp_path))
    assert result.outcome == Outcome.DENIED and "partial" in result.detail
    assert result.batch is not None and not result.batch.complete
    raw = json.loads((tmp_path / "aws" / f"{target.replace(':', '_')}.json").read_text())
    assert raw["calls"] == {} and {f["outcome"] for f in raw["failures"]} == {"denied"}
    assert "ec2.describe_instances" in {f["call"] for f in raw["failures"]}
    assert not replay(collector, tmp_path / "aws" / f"{target.replace(':', '_')}.json").complete
