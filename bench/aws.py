"""AWS discovery: API calls and wall time of a sync, side by side with a naive per-resource describe loop.

A moto server (server mode, its own process on loopback) holds N instances spread over R regions, each
region with a VPC, two subnets, a security group, and an ALB whose target group holds a slice of the
instances. Then, against the same server:

  - ``sync``: ``cmdb discover aws`` as shipped (services ec2 and elbv2: region-wide paginated describes,
    one batch per scope, cross-scope links at the end) into a fresh SQLite store; the API calls it made
    (counted by a botocore event hook) and its wall time, and the wall time of its reads alone;
  - ``naive``: what a per-resource loop does: list the instance ids, then one DescribeInstances per
    instance, one DescribeVolumes per volume, one DescribeSubnets and DescribeSecurityGroups per
    reference, one DescribeTargetHealth per target group and one DescribeLoadBalancers per load balancer.
    Its calls are made for real (reads only, no store), so both columns are measured, not estimated.

    python bench/aws.py [--instances 2000] [--regions 4] [--targets 50]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from moto_lab import FAKE_ENV, MotoServer  # noqa: E402

from cmdb.store.sqlite import SqliteStore  # noqa: E402
from discovery.aws.calls import AccountSpec, AwsConnection, CallCounter, ScopeReader  # noqa: E402
from discovery.aws.collector import AwsCollector, plan  # noqa: E402
from discovery.aws.services import SERVICES  # noqa: E402
from discovery.runner import run_discovery  # noqa: E402

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
SERVICES_USED = ("ec2", "elbv2")
CONCURRENCY = 4


def build(url: str, instances: int, regions: list[str], targets: int) -> None:
    import boto3

    per_region = [instances // len(regions) + (1 if i < instances % len(regions) else 0) for i in range(len(regions))]
    for region, count in zip(regions, per_region, strict=True):
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=url)
        elb = boto3.client("elbv2", region_name=region, endpoint_url=url)
        image = ec2.describe_images()["Images"][0]["ImageId"]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i * 16}.0/20",
                                     AvailabilityZone=f"{region}{'ab'[i]}")["Subnet"]["SubnetId"] for i in (0, 1)]
        sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
        ids: list[str] = []
        while len(ids) < count:
            n = min(250, count - len(ids))
            made = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n, InstanceType="t3.micro",
                                     SubnetId=subnets[len(ids) % 2], SecurityGroupIds=[sg],
                                     BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
                                     TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                         {"Key": "team", "Value": f"team-{len(ids) % 7}"}]}])
            ids += [i["InstanceId"] for i in made["Instances"]]
        lb = elb.create_load_balancer(Name="web", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]
        tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": i} for i in ids[:targets]])
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])


def sync(url: str, regions: list[str], store_path: Path) -> tuple[float, float, CallCounter, dict[str, int]]:
    """(wall s of the sync, wall s of its reads alone, the sync's calls, outcome counts)."""
    conn = AwsConnection(endpoint_url=url)
    aws_plan = plan(conn, [AccountSpec()], regions, list(SERVICES_USED))
    store = SqliteStore(store_path)
    try:
        started = time.perf_counter()
        record = asyncio.run(run_discovery(AwsCollector(conn, aws_plan), aws_plan.targets, store,
                                           concurrency=CONCURRENCY))
        wall = time.perf_counter() - started
    finally:
        store.close()
    reads = AwsConnection(endpoint_url=url)

    def read(scope: tuple[str, str]) -> None:
        region, service = scope
        SERVICES[service].get(ScopeReader(functools.partial(reads.client, AccountSpec(), region=region)))

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:  # the sync's concurrency: four scopes at once
        list(pool.map(read, [(r, s) for r in regions for s in SERVICES_USED]))
    return wall, time.perf_counter() - started, conn.counter, record.counts()


def naive(url: str, regions: list[str]) -> tuple[float, CallCounter]:
    """One describe per resource, as a straightforward script would do it (the regions side by side)."""
    conn = AwsConnection(endpoint_url=url)
    acct = AccountSpec()

    def one_region(region: str) -> None:
        ec2 = conn.client(acct, "ec2", region)
        elb = conn.client(acct, "elbv2", region)
        ids = [i["InstanceId"] for page in ec2.get_paginator("describe_instances").paginate()
               for r in page["Reservations"] for i in r["Instances"]]
        subnets: set[str] = set()
        groups: set[str] = set()
        for iid in ids:
            inst: dict[str, Any] = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
            subnets.add(inst["SubnetId"])
            groups.update(g["GroupId"] for g in inst.get("SecurityGroups", []))
            for bdm in inst.get("BlockDeviceMappings", []):
                ec2.describe_volumes(VolumeIds=[bdm["Ebs"]["VolumeId"]])
        for sn in sorted(subnets):
            ec2.describe_subnets(SubnetIds=[sn])
        for sg in sorted(groups):
            ec2.describe_security_groups(GroupIds=[sg])
        for lb in elb.describe_load_balancers()["LoadBalancers"]:
            elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])
            elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
        for tg in elb.describe_target_groups()["TargetGroups"]:
            elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])

    for region in regions:  # clients made first: boto3 sessions are not thread-safe
        conn.client(acct, "ec2", region)
        conn.client(acct, "elbv2", region)
    started = time.perf_counter()
    with ThreadPoolExecutor(min(CONCURRENCY, len(regions))) as pool:
        list(pool.map(one_region, regions))
    return time.perf_counter() - started, conn.counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=2000)
    ap.add_argument("--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1))
    ap.add_argument("--targets", type=int, default=50, help="instances registered in each region's target group")
    args = ap.parse_args()
    os.environ.update(FAKE_ENV)
    regions = list(REGIONS[: args.regions])
    server = MotoServer()
    server.start()
    try:
        started = time.perf_counter()
        build(server.url, args.instances, regions, args.targets)
        print(f"estate: {args.instances} instances in {len(regions)} regions ({', '.join(regions)}), "
              f"{args.targets} targets per region; built in {time.perf_counter() - started:.1f} s (moto {server.url})")
        with tempfile.TemporaryDirectory() as tmp:
            wall, reads, calls, outcomes = sync(server.url, regions, Path(tmp) / "bench.db")
        naive_wall, naive_calls = naive(server.url, regions)
    finally:
        server.close()
    print(f"sync outcomes: {outcomes}")
    print(f"{'':32}{'API calls':>12}{'wall s':>10}")
    print(f"{'sync (reads + ingest)':32}{calls.total:>12}{wall:>10.2f}")
    print(f"{'sync reads only (no store)':32}{calls.total:>12}{reads:>10.2f}")
    print(f"{'naive per-resource loop':32}{naive_calls.total:>12}{naive_wall:>10.2f}")
    print(f"ratio naive / sync: {naive_calls.total / max(1, calls.total):.0f}x the calls, "
          f"{naive_wall / max(reads, 1e-9):.1f}x the read time")
    print("sync calls by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(calls.counts.items())))


if __name__ == "__main__":
    main()
