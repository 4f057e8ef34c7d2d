"""The AWS transforms on raw responses recorded from moto (tests/data/aws, scripts/record_aws_responses.py),
the scope batches and cross-scope links they become, the error table, and an SSH view of an EC2 instance
merging with the instance's AWS CI."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from cmdb.batch import IdentityRef
from cmdb.ingest import ingest
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.aws.calls import AccountSpec, AwsConnection, ScopeReader, classify
from discovery.aws.collector import AwsCollector, AwsPlan
from discovery.aws.records import ScopeContext, TagMap, Transformed
from discovery.aws.services import SERVICES
from discovery.aws.to_batch import ScopeView, link_batches, scope_batch
from discovery.observations import DEVICE_REF
from discovery.outcomes import Outcome
from discovery.runner import collect_target
from discovery.ssh import parsers
from discovery.ssh.transform import transform_host
from tests.unit.test_ssh_parsers import recorded

DATA = Path(__file__).resolve().parent.parent / "data"
ESTATE = json.loads((DATA / "aws" / "estate.json").read_text())


def load(service: str, tag_map: TagMap | None = None) -> tuple[Transformed, ScopeContext]:
    doc = json.loads((DATA / "aws" / f"{service}.json").read_text())
    ctx = ScopeContext(doc["account"], doc["region"], service)
    return SERVICES[service].transform(doc["raw"], ctx, tag_map or TagMap()), ctx


def names(out: Transformed, cls: str) -> set[str]:
    return {r.attrs.get("name", r.ref) for r in out.resources if r.cls == cls}


def named_links(out: Transformed) -> set[tuple[str, str, str]]:
    label = {r.ref: r.attrs.get("name", r.ref) for r in out.resources}
    return {(label.get(x.src, x.src), x.type, label.get(x.dst, x.dst)) for x in out.links}


def test_ec2_instances_network_and_tags() -> None:
    out, ctx = load("ec2")
    ids = ESTATE["instances"]
    assert names(out, "CloudInstance") == {"web-1", "web-2", "web-3", "worker-1", *ESTATE["asg_instances"]}
    web1 = next(r for r in out.resources if r.attrs.get("name") == "web-1")
    assert web1.key == ("cloud_instance_id", ids["web-1"])
    assert web1.attrs["arn"] == f"arn:aws:ec2:us-east-1:{ctx.account}:instance/{ids['web-1']}"
    assert web1.attrs["environment"] == "production" and web1.attrs["account_id"] == ctx.account
    assert web1.attrs["region"] == "us-east-1" and web1.attrs["mac_addresses"]
    assert "owner=alice@example.com" in web1.attrs["tags"]
    assert {"shop-a", "shop-b", "batch-a"} <= names(out, "CloudSubnet")
    assert {r.attrs["gateway_type"] for r in out.resources if r.cls == "CloudGateway"} == {"internet", "nat"}
    sg = next(r for r in out.resources if r.cls == "SecurityGroup" and r.attrs["name"].startswith("web "))
    assert "ingress tcp 443 from 0.0.0.0/0" in sg.attrs["rules"]
    rt = [r for r in out.resources if r.cls == "RouteTable" and any("igw-" in x for x in r.attrs.get("routes", []))]
    assert len(rt) == 1 and any(x.startswith("0.0.0.0/0 -> igw-") for x in rt[0].attrs["routes"])
    links = named_links(out)
    assert {("web-1", "OWNED_BY", "alice@example.com"), ("web-1", "OWNED_BY", "web"),
            ("web-1", "IN_SUBNET", "shop-a"), ("worker-1", "OWNED_BY", "batch")} <= links
    assert ("web-1", "SECURED_BY", sg.attrs["name"]) in links
    assert any(s == "web-1" and t == "DEPENDS_ON" and d.startswith("vol-") for s, t, d in links)
    assert any(s == "batch-a" and t == "DEPENDS_ON" for s, t, d in links)  # its route table (via the NAT)
    assert len(names(out, "BlockVolume")) >= 6


def test_terminated_instances_are_not_seen() -> None:
    doc = json.loads((DATA / "aws" / "ec2.json").read_text())
    for res in doc["raw"]["instances"]:
        for inst in res["Instances"]:
            if inst["InstanceId"] == ESTATE["instances"]["worker-1"]:
                inst["State"] = {"Code": 48, "Name": "terminated"}
    out = SERVICES["ec2"].transform(doc["raw"], ScopeContext(doc["account"], "us-east-1", "ec2"), TagMap())
    assert "worker-1" not in names(out, "CloudInstance")


def test_tag_map_is_configurable() -> None:
    out, _ = load("ec2", TagMap.from_pairs(["owner=team", "team=owner", "name=nothing"]))
    web1 = next(r for r in out.resources if r.ref == ESTATE["instances"]["web-1"])
    assert web1.attrs["name"] == ESTATE["instances"]["web-1"]  # no 'nothing' tag: the id names it
    assert {x.dst for x in out.links if x.src == web1.ref and x.type == "OWNED_BY"} == {"web", "alice@example.com"}
    assert {r.cls for r in out.resources if r.ref in ("web", "alice@example.com")} == {"Person", "Team"}
    with pytest.raises(Exception, match="ROLE=TagKey"):
        TagMap.from_pairs(["colour=Colour"])


def test_elbv2_target_group_is_a_pool_with_majority_quorum() -> None:
    out, _ = load("elbv2")
    tg = next(r for r in out.resources if r.cls == "CloudCluster")
    assert tg.attrs["name"] == "shop-web" and tg.attrs["quorum"] == 2 and tg.attrs["cluster_type"] == "pool"
    members = {x.src for x in out.links if x.type == "MEMBER_OF"}
    assert members == {ESTATE["instances"][f"web-{i}"] for i in (1, 2, 3)}
    assert {("shop-alb", "DEPENDS_ON", "shop-alb:443"), ("shop-alb:443", "DEPENDS_ON", "shop-web"),
            ("shop-alb:443", "USES_CERTIFICATE", ESTATE["cert_arn"])} <= named_links(out)
    lb = next(r for r in out.resources if r.cls == "LoadBalancer")
    assert out.aliases[f"dns:{ESTATE['alb_dns']}"] == {lb.ref}


def test_autoscaling_rds_lambda_acm_route53_s3_eks() -> None:
    asg, _ = load("autoscaling")
    group = next(r for r in asg.resources if r.cls == "CloudCluster")
    assert (group.attrs["name"], group.attrs["quorum"], group.attrs["min_size"]) == ("batch-asg", 2, 2)
    assert {x.src for x in asg.links if x.type == "MEMBER_OF"} == set(ESTATE["asg_instances"])
    rds, _ = load("rds")
    assert {(r.attrs["name"], r.attrs.get("role")) for r in rds.resources if r.cls == "CloudDatabase"} == {
        ("orders-1", "primary"), ("orders-2", "replica")}
    assert {("orders-1", "MEMBER_OF", "orders"), ("orders-2", "MEMBER_OF", "orders")} <= named_links(rds)
    fn, _ = load("lambda")
    assert names(fn, "Function") == {"resize-images"}
    assert {x.type for x in fn.links} == {"IN_NETWORK", "IN_SUBNET", "SECURED_BY"}
    acm, _ = load("acm")
    cert = next(r for r in acm.resources if r.cls == "Certificate")
    assert cert.attrs["subject"] == "www.example.com" and cert.attrs["not_after"].startswith("2027-01-01")
    dns, _ = load("route53")
    assert names(dns, "DnsRecord") == {"www.example.com A", "worker.example.com A"}
    assert {(x.type, x.dst) for x in dns.links} == {("DEPENDS_ON", f"dns:{ESTATE['alb_dns']}"),
                                                     ("DEPENDS_ON", "ip:10.20.1.4")}
    s3, _ = load("s3")
    assert names(s3, "Bucket") == {"shop-assets"}
    eks, _ = load("eks")
    assert names(eks, "KubernetesCluster") == {"shop-k8s"}


def test_scope_batches_and_cross_scope_links() -> None:
    views = []
    for service in ("ec2", "elbv2", "acm", "route53"):
        out, ctx = load(service)
        batch = scope_batch(out, ctx, complete=True)
        assert batch.scope == ctx.scope and batch.complete and batch.source == "aws"
        assert all(isinstance(r.src, str) and isinstance(r.dst, str) for r in batch.rels)  # local links only
        views.append(ScopeView(ctx, out, complete=True, written=True))
    links = link_batches(views)
    by_scope = {b.scope: b for b in links}
    elb = by_scope["aws:123456789012:us-east-1:elbv2:links"]
    assert elb.complete
    assert {(r.type, r.dst.cls) for r in elb.rels if isinstance(r.dst, IdentityRef)} >= {
        ("USES_CERTIFICATE", "Certificate"), ("IN_SUBNET", "CloudSubnet"), ("MEMBER_OF", "CloudCluster")}
    members = {dict(r.src.attrs)["cloud_instance_id"] for r in elb.rels
               if r.type == "MEMBER_OF" and isinstance(r.src, IdentityRef)}
    assert members == {ESTATE["instances"][f"web-{i}"] for i in (1, 2, 3)}
    dns = by_scope["aws:123456789012:global:route53:links"]
    assert {(r.dst.cls) for r in dns.rels if isinstance(r.dst, IdentityRef)} == {"LoadBalancer", "CloudInstance"}
    # One failed scope in the account: its links are written where possible, but nothing ages.
    views[2] = ScopeView(views[2].ctx, Transformed(), complete=False, written=True)
    partial = {b.scope: b for b in link_batches(views)}
    assert not any(b.complete for b in partial.values())
    assert not any(r.type == "USES_CERTIFICATE" for r in partial["aws:123456789012:us-east-1:elbv2:links"].rels)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "DescribeInstances")


@pytest.mark.parametrize(("exc", "outcome"), [
    (_client_error("UnauthorizedOperation", 403), Outcome.DENIED),
    (_client_error("AccessDeniedException", 400), Outcome.DENIED),
    (_client_error("", 403), Outcome.DENIED),
    (_client_error("RequestLimitExceeded", 503), Outcome.THROTTLED),
    (_client_error("Throttling", 400), Outcome.THROTTLED),
    (_client_error("InternalError", 500), Outcome.ERROR),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), Outcome.ERROR),
])
def test_error_table(exc: Exception, outcome: Outcome) -> None:
    assert classify(exc)[0] == outcome


def test_scope_outcome_is_the_worst_call_and_the_rest_goes_on() -> None:
    class Client:
        def describe_volumes(self) -> Any:
            raise _client_error("Throttling", 400)

        def describe_vpcs(self) -> Any:
            raise _client_error("UnauthorizedOperation", 403)

        def describe_subnets(self) -> dict[str, Any]:
            return {"Subnets": []}

    reader = ScopeReader(lambda service: Client())
    for op in ("describe_volumes", "describe_vpcs", "describe_subnets"):
        reader.keep(op, reader.call("ec2", op))
    outcome, detail = reader.outcome()
    assert outcome == Outcome.DENIED and "ec2.describe_vpcs" in detail and "ec2.describe_volumes" in detail
    assert reader.raw == {"describe_subnets": {"Subnets": []}}


# -- SSH: the instance id a host exposes ---------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("nitro", "i-0f3c1a2b4d5e6f789"), ("xen_cloud_init", "i-1234567890abcdef0"),
    ("other_cloud", None), ("bare_metal", None),
])
def test_instance_id_parser(name: str, expected: str | None) -> None:
    assert parsers.parse_instance_id((DATA / "ssh_instance_id" / f"{name}.out").read_text()) == expected


def test_instance_id_parser_rejects_broken_json() -> None:
    with pytest.raises(parsers.FactsParseError, match="instance_id"):
        parsers.parse_instance_id("==> /run/cloud-init/instance-data.json\n{not json\n")


def test_ssh_host_with_instance_id_merges_with_its_ec2_ci(tmp_path: Path) -> None:
    """The AWS scope first, then SSH on the same machine (any order works: the instance id is a key)."""
    out, ctx = load("ec2")
    web1_id = ESTATE["instances"]["web-1"]
    facts = recorded("app1")
    facts.instance_id = web1_id
    facts.virt = "amazon"
    store = SqliteStore(tmp_path / "cmdb.db")
    try:
        ingest(store, scope_batch(out, ctx, complete=True))
        instances = store.search(SearchQuery(classes=["CloudInstance"], limit=100)).total
        result = ingest(store, transform_host(facts))
        assert not result.conflicts
        ci_id = store.find_by_key(f"device:cloud_instance_id={web1_id}")
        assert ci_id is not None and ci_id == result.ci_ids[DEVICE_REF]  # the SSH host is the EC2 CI
        ci = store.get_ci(ci_id)
        assert ci is not None and ci.cls == "CloudInstance"
        assert ci.attrs["hostname"] == facts.hostname and ci.attrs["name"] == "web-1"  # aws names it, ssh adds
        assert ci.attrs["region"] == "us-east-1" and ci.attrs["kernel"] == facts.kernel
        assert store.search(SearchQuery(classes=["CloudInstance"], limit=100)).total == instances
        assert store.search(SearchQuery(classes=["Host", "Server", "VirtualMachine"], limit=100)).total == 0
    finally:
        store.close()


def test_an_endpoint_that_refuses_connections_is_an_error_by_the_table(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """Every call of the scope fails to connect (a closed port on loopback): the reading is partial, its
    outcome is ``error`` from ``AWS_OUTCOMES`` (botocore's EndpointConnectionError is no OSError), and the
    empty batch it makes is incomplete, so it ages nothing."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    target = "aws:123456789012:us-east-1:acm"
    collector = AwsCollector(AwsConnection(endpoint_url=url, max_attempts=1),
                             AwsPlan([target], {"123456789012": AccountSpec()}))
    result = asyncio.run(collect_target(collector, target))
    assert result.outcome == Outcome.ERROR and "acm.list_certificates" in result.detail
    assert result.batch is not None and not result.batch.complete and not result.batch.cis
