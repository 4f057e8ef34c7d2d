"""Lambda functions and their VPC attachment (subnets, security groups)."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed


def get_lambda(reader: ScopeReader) -> None:
    reader.keep("functions", reader.pages("lambda", "list_functions", "Functions"))


def transform_lambda(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    """ListFunctions carries no tags (one ListTags call per function would be); owners come from elsewhere."""
    out = Transformed()
    for fn in raw.get("functions", []):
        vpc = fn.get("VpcConfig") or {}
        ref = out.add("Function", ("arn", fn["FunctionArn"]), name=fn["FunctionName"], runtime=fn.get("Runtime"),
                      handler=fn.get("Handler"), memory_mb=fn.get("MemorySize"), vpc_id=vpc.get("VpcId") or None,
                      description=fn.get("Description") or None, account_id=ctx.account, region=ctx.region)
        if vpc.get("VpcId"):
            out.link("IN_NETWORK", ref, ctx.arn("ec2", f"vpc/{vpc['VpcId']}"))
        for subnet in vpc.get("SubnetIds", []):
            out.link("IN_SUBNET", ref, ctx.arn("ec2", f"subnet/{subnet}"))
        for sg in vpc.get("SecurityGroupIds", []):
            out.link("SECURED_BY", ref, ctx.arn("ec2", f"security-group/{sg}"))
    return out
