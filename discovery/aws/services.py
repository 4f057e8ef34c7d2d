"""The services AWS discovery knows: each one's get (I/O), transform (pure) and whether it is global."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from discovery.aws import acm, autoscaling, ec2, eks, elbv2, lambda_functions, rds, route53, s3
from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed


@dataclass(frozen=True)
class Service:
    name: str
    get: Callable[[ScopeReader], None]
    transform: Callable[[dict[str, Any], ScopeContext, TagMap], Transformed]
    is_global: bool = False  # one scope per account (region "global"), not one per region


SERVICES: dict[str, Service] = {s.name: s for s in (
    Service("ec2", ec2.get_ec2, ec2.transform_ec2),
    Service("elbv2", elbv2.get_elbv2, elbv2.transform_elbv2),
    Service("autoscaling", autoscaling.get_autoscaling, autoscaling.transform_autoscaling),
    Service("rds", rds.get_rds, rds.transform_rds),
    Service("lambda", lambda_functions.get_lambda, lambda_functions.transform_lambda),
    Service("acm", acm.get_acm, acm.transform_acm),
    Service("eks", eks.get_eks, eks.transform_eks),
    Service("route53", route53.get_route53, route53.transform_route53, is_global=True),
    Service("s3", s3.get_s3, s3.transform_s3, is_global=True),
)}
