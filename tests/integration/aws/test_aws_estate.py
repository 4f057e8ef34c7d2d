"""AWS discovery against moto in server mode: a realistic estate discovered into a real SQLite store,
checked as sets of CIs and relationships; then the lifecycle (terminated -> stale, never deleted), a denied
region (retires nothing), impact through a target group's quorum, an SSH view of an instance merging
with its EC2 CI, and an unchanged re-sync writing no history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest
from moto_lab import ACCOUNT, DenyingEndpoint, Estate, MotoServer

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import DiscoveryRunRecord, GraphStore, SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.aws.calls import AccountSpec, AwsConnection
from discovery.aws.collector import AwsCollector, plan
from discovery.aws.services import SERVICES
from discovery.runner import run_discovery
from impact.engine import blast_radius
from impact.expiry import expiring, expiry_failures
from impact.source import StoreSource
from impact.states import State

REGIONS = ("us-east-1", "eu-west-1")
QUICK = ReconcileConfig(stale_after_runs=1, retire_after_runs=3)  # one complete miss makes a CI stale


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cmdb.db")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """The crux tests run on both stores (the Neo4j one from tests/integration/conftest.py)."""
    if request.param == "neo4j":
        yield request.getfixturevalue("neo")
        return
    s = SqliteStore(tmp_path / "cmdb.db")
    try:
        yield s
    finally:
        s.close()


def discover(store: GraphStore, endpoint: str | Mapping[str, str], *, config: ReconcileConfig | None = None,
             regions: tuple[str, ...] = REGIONS) -> tuple[DiscoveryRunRecord, AwsConnection]:
    conn = AwsConnection(endpoint_url=endpoint, max_attempts=2)
    aws_plan = plan(conn, [AccountSpec(profile="estate")], list(regions), list(SERVICES))
    record = asyncio.run(run_discovery(AwsCollector(conn, aws_plan), aws_plan.targets, store, config=config,
                                       concurrency=4))
    return record, conn


def cis_by_name(store: GraphStore) -> dict[tuple[str, str], str]:
    """(class, name) -> CI id, for every CI."""
    out: dict[tuple[str, str], str] = {}
    offset = 0
    while True:
        page = store.search(SearchQuery(limit=500, offset=offset))
        for ci in page.items:
            out[(ci.cls, ci.name or "")] = ci.id
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return out


def rels_by_name(store: GraphStore, types: set[str]) -> set[tuple[str, str, str]]:
    names = {cid: name for (_, name), cid in cis_by_name(store).items()}
    found = set()
    for rel in store.neighbors(sorted(names), sorted(types), "out"):
        found.add((names.get(rel.src, rel.src), rel.type, names.get(rel.dst, rel.dst)))
    return found


def test_estate_discovered_as_sets(any_store: GraphStore, estate: Estate, moto_server: MotoServer) -> None:
    store = any_store
    record, conn = discover(store, moto_server.url)
    outcomes = {o["target"]: o["outcome"] for o in record.outcomes}
    assert set(outcomes.values()) == {"ok"}, outcomes
    assert set(outcomes) == {f"aws:{ACCOUNT}:{r}:{s}" for r in REGIONS for s in SERVICES
                             if not SERVICES[s].is_global} | {f"aws:{ACCOUNT}:global:route53",
                                                              f"aws:{ACCOUNT}:global:s3"}
    assert all(b["outcome"] == "ok" for b in record.options["run_level_batches"])
    cis = cis_by_name(store)
    names = {(cls, n) for cls, n in cis}
    asg = set(estate.asg_instances)
    assert {n for c, n in names if c == "CloudInstance"} == {"web-1", "web-2", "web-3", "worker-1", "eu-web-1"} | asg
    assert {n for c, n in names if c == "VPC"} >= {f"shop-vpc ({estate.vpcs['shop-vpc']})",
                                                   f"batch-vpc ({estate.vpcs['batch-vpc']})"}
    assert {n for c, n in names if c == "CloudSubnet"} >= {"shop-a", "shop-b", "batch-a"}
    assert {c for c, n in names if n.startswith(("igw-", "nat-"))} == {"CloudGateway"}
    assert {n for c, n in names if c == "CloudCluster"} == {"shop-web", "batch-asg", "orders"}
    assert {n for c, n in names if c == "CloudDatabase"} == {"orders-1", "orders-2"}
    assert ("LoadBalancer", "shop-alb") in names and ("Listener", "shop-alb:443") in names
    assert ("Function", "resize-images") in names and ("Bucket", "shop-assets") in names
    assert ("KubernetesCluster", "shop-k8s") in names
    assert ("Certificate", "www.example.com") in names
    assert {n for c, n in names if c == "DnsRecord"} == {"www.example.com A", "worker.example.com A"}
    assert {("Person", "alice@example.com"), ("Team", "web"), ("Team", "batch"), ("Team", "data")} <= names

    web1 = store.get_ci(cis[("CloudInstance", "web-1")])
    assert web1 is not None
    assert web1.attrs["account_id"] == ACCOUNT and web1.attrs["region"] == "us-east-1"
    assert web1.attrs["cloud_instance_id"] == estate.instances["web-1"] and web1.attrs["environment"] == "production"
    assert web1.attrs["mac_addresses"] and web1.attrs["private_ip"] in web1.attrs["ip_addresses"]
    cert = store.get_ci(cis[("Certificate", "www.example.com")])
    assert cert is not None and cert.attrs["not_after"].startswith("2027-01-01")
    tg = store.get_ci(cis[("CloudCluster", "shop-web")])
    assert tg is not None and tg.attrs["quorum"] == 2
    asg_ci = store.get_ci(cis[("CloudCluster", "batch-asg")])
    assert asg_ci is not None and asg_ci.attrs["quorum"] == 2 and asg_ci.attrs["min_size"] == 2

    rels = rels_by_name(store, {"MEMBER_OF", "DEPENDS_ON", "USES_CERTIFICATE", "OWNED_BY", "IN_SUBNET"})
    tg_members = {(s, t, d) for s, t, d in rels if d == "shop-web" and t == "MEMBER_OF"}
    assert tg_members == {(f"web-{i}", "MEMBER_OF", "shop-web") for i in (1, 2, 3)}
    assert {(s, t, d) for s, t, d in rels if d == "batch-asg"} == {(i, "MEMBER_OF", "batch-asg") for i in asg}
    assert {(s, t, d) for s, t, d in rels if d == "orders"} == {("orders-1", "MEMBER_OF", "orders"),
                                                                ("orders-2", "MEMBER_OF", "orders")}
    assert {
        ("shop-alb", "DEPENDS_ON", "shop-alb:443"), ("shop-alb:443", "DEPENDS_ON", "shop-web"),
        ("shop-alb:443", "USES_CERTIFICATE", "www.example.com"),
        ("www.example.com A", "DEPENDS_ON", "shop-alb"), ("worker.example.com A", "DEPENDS_ON", "worker-1"),
        ("web-1", "OWNED_BY", "alice@example.com"), ("web-1", "OWNED_BY", "web"),
        ("web-1", "IN_SUBNET", "shop-a"), ("resize-images", "IN_SUBNET", "shop-a"),
        ("shop-alb", "IN_SUBNET", "shop-a"), ("shop-alb", "IN_SUBNET", "shop-b"),
    } <= rels
    assert any(s == "web-1" and t == "DEPENDS_ON" and d.startswith("vol-") for s, t, d in rels)
    assert conn.counter.total < 60  # paginated region-wide calls, not one per resource

    # Re-syncing the unchanged account writes no history event.
    again, _ = discover(store, moto_server.url)
    assert sum(o["changes"] for o in again.outcomes) == 0
    assert all(b["changes"] == 0 for b in again.options["run_level_batches"])

    # Impact: one of three target-group instances down degrades the site, two take it down.
    ingest(store, Batch.from_dict({"source": "manual", "cis": [
        {"ref": "shop", "class": "Service", "name": "shop", "service_type": "business", "tier": 1}],
        "relationships": [{"type": "DEPENDS_ON", "from": "shop",
                           "to": {"class": "DnsRecord", "resource_id": _www_record_id(store)}}]}))
    cis = cis_by_name(store)
    shop = cis[("Service", "shop")] if ("Service", "shop") in cis else store.find_by_name("shop")[0]
    one = blast_radius(StoreSource(store), {cis[("CloudInstance", "web-1")]: State.DOWN})
    assert one.affected[cis[("CloudCluster", "shop-web")]] == State.DEGRADED
    assert one.affected[shop] == State.DEGRADED
    two = blast_radius(StoreSource(store), {cis[("CloudInstance", "web-1")]: State.DOWN,
                                            cis[("CloudInstance", "web-2")]: State.DOWN})
    assert two.affected[cis[("CloudCluster", "shop-web")]] == State.DOWN
    assert two.affected[shop] == State.DOWN
    paths = {s.name: " -> ".join(s.path) for s in two.services()}
    assert "shop-web" in paths["shop"] and "shop-alb" in paths["shop"]

    # The ACM certificate's not_after feeds the expiry tasks: expired, it takes the listener and the site down.
    assert expiring(store, "2026-12-31T00:00:00Z") == {}
    expired = blast_radius(StoreSource(store), expiry_failures(store, "2027-01-02T00:00:00Z"))
    assert expired.affected[cis[("Listener", "shop-alb:443")]] == State.DOWN
    assert expired.affected[shop] == State.DOWN
    assert {s.name: s.path[0] for s in expired.services()}["shop"] == "www.example.com"


def _www_record_id(store: GraphStore) -> str:
    ci = store.get_ci(store.find_by_name("www.example.com A")[0])
    assert ci is not None
    return str(ci.attrs["resource_id"])


def test_terminated_instance_becomes_stale_never_deleted(store: SqliteStore, estate: Estate,
                                                          moto_server: MotoServer) -> None:
    discover(store, moto_server.url, config=QUICK)
    worker = store.find_by_key(f"device:cloud_instance_id={estate.instances['worker-1'].lower()}")
    assert worker is not None
    boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_server.url).terminate_instances(
        InstanceIds=[estate.instances["worker-1"]])
    record, _ = discover(store, moto_server.url, config=QUICK)
    assert {o["outcome"] for o in record.outcomes} == {"ok"}
    ci = store.get_ci(worker)
    assert ci is not None and ci.status == "stale"  # still there, marked
    web1 = store.get_ci(store.find_by_key(f"device:cloud_instance_id={estate.instances['web-1'].lower()}") or "")
    assert web1 is not None and web1.status == "active"


def test_denied_region_retires_nothing(any_store: GraphStore, estate: Estate, moto_server: MotoServer) -> None:
    store = any_store
    discover(store, moto_server.url, config=QUICK)
    eu = store.find_by_key(f"device:cloud_instance_id={estate.eu_instance.lower()}")
    assert eu is not None
    with DenyingEndpoint() as deny:
        record, _ = discover(store, {"eu-west-1": deny.url, "*": moto_server.url}, config=QUICK)
    outcomes = {o["target"]: o["outcome"] for o in record.outcomes}
    eu_scopes = {t: o for t, o in outcomes.items() if ":eu-west-1:" in t}
    assert set(eu_scopes.values()) == {"denied"}, eu_scopes
    assert {o for t, o in outcomes.items() if ":eu-west-1:" not in t} == {"ok"}
    detail = next(o["detail"] for o in record.outcomes if o["target"].endswith("eu-west-1:ec2"))
    assert "partial" in detail and "DescribeInstances".lower() in detail.lower().replace("_", "")
    ci = store.get_ci(eu)
    assert ci is not None and ci.status == "active"
    # nor did the account's cross-scope links age: their batches were partial
    assert all(b["scope"].endswith(":links") for b in record.options["run_level_batches"])
    runs = [r for r in store.runs("aws", 200) if r.run_id.startswith(record.run_id)]
    assert runs and not any(r.complete for r in runs if r.scope and ":eu-west-1:" in r.scope)
    assert not any(r.complete for r in runs if r.scope and r.scope.endswith(":links"))
    assert all(r.stats.get("stale", 0) == 0 and r.stats.get("retired", 0) == 0 for r in runs)


def test_throttled_scope_is_retried_then_reported(store: SqliteStore, moto_server: MotoServer) -> None:
    """botocore's standard retry mode retries a throttled call up to max_attempts before the scope is
    reported ``throttled``; the scope's batch is partial."""
    seen = {}
    with DenyingEndpoint("throttled") as slow:
        for attempts in (1, 3):
            before = slow.requests
            conn = AwsConnection(endpoint_url={"eu-west-1": slow.url, "*": moto_server.url}, max_attempts=attempts)
            aws_plan = plan(conn, [AccountSpec(profile="estate")], ["eu-west-1"], ["acm"])
            record = asyncio.run(run_discovery(AwsCollector(conn, aws_plan), aws_plan.targets, store))
            seen[attempts] = slow.requests - before
            assert [(o["target"], o["outcome"]) for o in record.outcomes] == [
                (f"aws:{ACCOUNT}:eu-west-1:acm", "throttled")]
    assert seen[3] - seen[1] == 2  # two retries of the one call
    assert not any(r.complete for r in store.runs("aws", 10))


def test_accounts_by_profile_and_by_assumed_role(store: SqliteStore, moto_server: MotoServer) -> None:
    """Two accounts in one run: the profile's and one reached by assuming a role (moto keeps accounts apart)."""
    moto_server.reset()
    other = "111111111111"
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto_server.url)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{other}:role/audit", RoleSessionName="test")["Credentials"]
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_server.url,
                       aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                       aws_session_token=creds["SessionToken"])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "audit-1"}]}])
    conn = AwsConnection(endpoint_url=moto_server.url, max_attempts=2)
    role = f"arn:aws:iam::{other}:role/audit"
    accounts = [AccountSpec(profile="estate"), AccountSpec(profile="estate", role_arn=role)]
    aws_plan = plan(conn, accounts, ["us-east-1"], ["ec2"])
    assert aws_plan.targets == [f"aws:{ACCOUNT}:us-east-1:ec2", f"aws:{other}:us-east-1:ec2"]
    record = asyncio.run(run_discovery(AwsCollector(conn, aws_plan), aws_plan.targets, store))
    assert {o["outcome"] for o in record.outcomes} == {"ok"}
    audit = store.get_ci(store.find_by_name("audit-1")[0])
    assert audit is not None and audit.attrs["account_id"] == other and audit.cls == "CloudInstance"


def test_all_enabled_regions_make_one_scope_each(moto_server: MotoServer) -> None:
    conn = AwsConnection(endpoint_url=moto_server.url, max_attempts=2)
    aws_plan = plan(conn, [AccountSpec(profile="estate")], None, ["acm", "s3"])
    regions = {t.split(":")[2] for t in aws_plan.targets if t.endswith(":acm")}
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= regions and len(regions) > 10
    assert [t for t in aws_plan.targets if t.endswith(":s3")] == [f"aws:{ACCOUNT}:global:s3"]
    assert conn.counter.counts == {"sts.GetCallerIdentity": 1, "ec2.DescribeRegions": 1}
