"""ELBv2: load balancers, their listeners (and the certificates they present), target groups with their
registered targets. A target group is a ``CloudCluster`` (pool) whose members are its instances, with a
majority quorum: impact sees one lost member of three as degraded, two as down."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed, apply_tags, tag_dict

TAGS_PER_CALL = 20  # DescribeTags takes at most 20 resource ARNs


def get_elbv2(reader: ScopeReader) -> None:
    lbs = reader.pages("elbv2", "describe_load_balancers", "LoadBalancers")
    reader.keep("load_balancers", lbs)
    groups = reader.pages("elbv2", "describe_target_groups", "TargetGroups")
    reader.keep("target_groups", groups)
    listeners: dict[str, Any] = {}
    for lb in lbs or []:
        found = reader.pages("elbv2", "describe_listeners", "Listeners", LoadBalancerArn=lb["LoadBalancerArn"])
        if found is not None:
            listeners[lb["LoadBalancerArn"]] = found
    reader.keep("listeners", listeners)
    health: dict[str, Any] = {}
    for tg in groups or []:
        answer = reader.call("elbv2", "describe_target_health", TargetGroupArn=tg["TargetGroupArn"])
        if answer is not None:
            health[tg["TargetGroupArn"]] = answer.get("TargetHealthDescriptions", [])
    reader.keep("target_health", health)
    arns = [lb["LoadBalancerArn"] for lb in lbs or []] + [tg["TargetGroupArn"] for tg in groups or []]
    tags: dict[str, Any] = {}
    for i in range(0, len(arns), TAGS_PER_CALL):
        answer = reader.call("elbv2", "describe_tags", ResourceArns=arns[i:i + TAGS_PER_CALL])
        for d in (answer or {}).get("TagDescriptions", []):
            tags[d["ResourceArn"]] = d.get("Tags", [])
    reader.keep("tags", tags)


def transform_elbv2(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    where = {"account_id": ctx.account, "region": ctx.region}
    tags_of = raw.get("tags", {})
    for tg in raw.get("target_groups", []):
        arn = tg["TargetGroupArn"]
        targets = raw.get("target_health", {}).get(arn, [])
        instances = sorted({t["Target"]["Id"] for t in targets if str(t["Target"]["Id"]).startswith("i-")})
        tags = apply_tags(out, arn, tag_dict(tags_of.get(arn)), tag_map)
        tags["name"] = tg["TargetGroupName"]
        out.add("CloudCluster", ("arn", arn), cluster_type="pool", quorum=len(instances) // 2 + 1,
                resource_id=tg["TargetGroupName"], **where, **tags)
        for iid in instances:
            out.link("MEMBER_OF", iid, arn)
    for lb in raw.get("load_balancers", []):
        arn = lb["LoadBalancerArn"]
        tags = apply_tags(out, arn, tag_dict(tags_of.get(arn)), tag_map)
        tags["name"] = lb["LoadBalancerName"]
        ref = out.add("LoadBalancer", ("arn", arn), dns_name=lb.get("DNSName"), scheme=lb.get("Scheme"),
                      lb_type=lb.get("Type"), vpc_id=lb.get("VpcId"), vendor="Amazon", model="ELBv2", **where, **tags)
        out.alias(ref, f"dns:{lb.get('DNSName') or ''}")
        if lb.get("VpcId"):
            out.link("IN_NETWORK", ref, ctx.arn("ec2", f"vpc/{lb['VpcId']}"))
        for az in lb.get("AvailabilityZones", []):
            if az.get("SubnetId"):
                out.link("IN_SUBNET", ref, ctx.arn("ec2", f"subnet/{az['SubnetId']}"))
        for sg in lb.get("SecurityGroups", []):
            out.link("SECURED_BY", ref, ctx.arn("ec2", f"security-group/{sg}"))
        for lis in raw.get("listeners", {}).get(arn, []):
            lref = out.add("Listener", ("arn", lis["ListenerArn"]), name=f"{lb['LoadBalancerName']}:{lis.get('Port')}",
                           port=lis.get("Port"), protocol=lis.get("Protocol"), vpc_id=lb.get("VpcId"), **where)
            out.link("DEPENDS_ON", ref, lref)  # the load balancer serves through its listeners
            for group in _forwards_to(lis.get("DefaultActions", [])):
                out.link("DEPENDS_ON", lref, group)
            for cert in lis.get("Certificates", []):
                if cert.get("CertificateArn"):
                    out.link("USES_CERTIFICATE", lref, cert["CertificateArn"])
    return out


def _forwards_to(actions: list[dict[str, Any]]) -> list[str]:
    groups = []
    for action in actions:
        if action.get("TargetGroupArn"):
            groups.append(action["TargetGroupArn"])
        for tg in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            groups.append(tg["TargetGroupArn"])
    return sorted(set(groups))
