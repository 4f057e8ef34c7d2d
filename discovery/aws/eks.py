"""EKS clusters and their VPC (ListClusters, then DescribeCluster per cluster)."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed, apply_tags, tag_dict


def get_eks(reader: ScopeReader) -> None:
    names = reader.pages("eks", "list_clusters", "clusters")
    found = []
    for name in names or []:
        answer = reader.call("eks", "describe_cluster", name=name)
        if answer is not None:
            found.append(answer.get("cluster", {}))
    if names is not None:
        reader.keep("clusters", found)


def transform_eks(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    for c in raw.get("clusters", []):
        arn = c["arn"]
        vpc = c.get("resourcesVpcConfig") or {}
        tags = apply_tags(out, arn, tag_dict(c.get("tags")), tag_map)
        tags["name"] = c["name"]
        ref = out.add("KubernetesCluster", ("arn", arn), resource_id=c["name"], version=c.get("version"),
                      endpoint=c.get("endpoint"), vpc_id=vpc.get("vpcId"), account_id=ctx.account,
                      region=ctx.region, **tags)
        if vpc.get("vpcId"):
            out.link("IN_NETWORK", ref, ctx.arn("ec2", f"vpc/{vpc['vpcId']}"))
        for subnet in vpc.get("subnetIds", []):
            out.link("IN_SUBNET", ref, ctx.arn("ec2", f"subnet/{subnet}"))
    return out
