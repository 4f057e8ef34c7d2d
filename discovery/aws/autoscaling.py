"""Auto-scaling groups: a ``CloudCluster`` whose quorum follows the group's minimum size (the capacity
the operators declared they need), with its instances as members."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed, apply_tags, tag_dict


def get_autoscaling(reader: ScopeReader) -> None:
    reader.keep("groups", reader.pages("autoscaling", "describe_auto_scaling_groups", "AutoScalingGroups"))


def transform_autoscaling(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    for g in raw.get("groups", []):
        arn = g["AutoScalingGroupARN"]
        tags = apply_tags(out, arn, tag_dict(g.get("Tags")), tag_map)
        tags["name"] = g["AutoScalingGroupName"]
        out.add("CloudCluster", ("arn", arn), cluster_type="pool", quorum=max(1, int(g.get("MinSize") or 0)),
                min_size=g.get("MinSize"), max_size=g.get("MaxSize"), resource_id=g["AutoScalingGroupName"],
                account_id=ctx.account, region=ctx.region, **tags)
        for inst in g.get("Instances", []):
            out.link("MEMBER_OF", inst["InstanceId"], arn)
        for subnet in filter(None, (g.get("VPCZoneIdentifier") or "").split(",")):
            out.link("IN_SUBNET", arn, ctx.arn("ec2", f"subnet/{subnet.strip()}"))
    return out
