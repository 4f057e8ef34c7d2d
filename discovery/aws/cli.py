"""``cmdb discover aws``: AWS accounts and regions into the CMDB, one scope per (account, region, service)."""

from __future__ import annotations

from typing import Annotated

import typer

from discovery.cli import RecordOpt
from discovery.push import PushOpt, TokenFileOpt

ALL_SERVICES = "ec2,elbv2,autoscaling,rds,lambda,acm,eks,route53,s3"


def register(app: typer.Typer, discover_app: typer.Typer) -> None:
    """Adds ``cmdb discover aws``."""
    discover_app.command("aws")(aws)


def aws(
    ctx: typer.Context,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", "-P", help="AWS named profile, one per account (repeat); default: the default credential chain.")
    ] = None,
    role_arn: Annotated[list[str] | None, typer.Option(
        "--role-arn", help="Role to assume in another account with the first profile's credentials (repeat).")
    ] = None,
    regions: Annotated[str | None, typer.Option(
        "--regions", help="Comma-separated regions (default: the profile's region).")] = None,
    all_regions: Annotated[bool, typer.Option("--all-regions", help="Every region enabled in the account.")
                           ] = False,
    services: Annotated[str, typer.Option("--services", help="Comma-separated services.")] = ALL_SERVICES,
    tag_map: Annotated[list[str] | None, typer.Option(
        "--tag-map", help="ROLE=TagKey (roles: name, owner, team, environment), e.g. owner=Owner (repeat).")
    ] = None,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", help="Send every API call to this URL (a moto server, a proxy).")] = None,
    concurrency: Annotated[int, typer.Option(help="Scopes read at once.")] = 8,
    max_attempts: Annotated[int, typer.Option(help="Attempts per call (botocore standard retry mode).")] = 5,
    push: PushOpt = None,
    token_file: TokenFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    record: RecordOpt = None,
) -> None:
    """EC2 and VPC networking, ELBv2, auto-scaling, RDS, Lambda, ACM, EKS, Route 53, S3: one batch per scope."""
    from cmdb.errors import BadInputError
    from discovery.aws.calls import AccountSpec, AwsConnection
    from discovery.aws.collector import AwsCollector, plan
    from discovery.aws.records import TagMap
    from discovery.aws.services import SERVICES
    from discovery.cli import execute

    wanted = [s.strip() for s in services.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SERVICES]
    if unknown or not wanted:
        raise BadInputError(f"--services: unknown {', '.join(unknown) or '(none given)'}; "
                            f"choose from {', '.join(SERVICES)}")
    if regions and all_regions:
        raise BadInputError("give --regions or --all-regions, not both")
    if max_attempts < 1 or concurrency < 1:
        raise BadInputError("--max-attempts and --concurrency must be at least 1")
    accounts = [AccountSpec(profile=p) for p in profile or []] or [AccountSpec()]
    base_profile = profile[0] if profile else None
    accounts += [AccountSpec(profile=base_profile, role_arn=r) for r in role_arn or []]
    region_list = [r.strip() for r in (regions or "").split(",") if r.strip()] or None
    conn = AwsConnection(endpoint_url=endpoint_url, max_attempts=max_attempts)
    if region_list is None and not all_regions:
        try:
            default = conn.session(accounts[0]).region_name
        except Exception as exc:  # botocore's ProfileNotFound and kin
            raise BadInputError(f"AWS account {accounts[0].label}: {exc}") from None
        if not default:
            raise BadInputError("no region: give --regions R1,R2, --all-regions, or set the profile's region")
        region_list = [default]
    aws_plan = plan(conn, accounts, region_list, wanted)
    collector = AwsCollector(conn, aws_plan, TagMap.from_pairs(tag_map or []))
    options = {"accounts": [a.label for a in accounts], "regions": region_list or "all", "services": wanted,
               "endpoint_url": endpoint_url, "concurrency": concurrency}
    run = execute(ctx, collector, aws_plan.targets, concurrency=concurrency, target_timeout=None,
                  options=options, as_json=as_json, record_dir=record)
    partial = [o["target"] for o in run.outcomes if o["outcome"] != "ok"]
    if partial and not as_json:
        typer.echo(f"partial scopes (nothing aged there): {', '.join(partial)}", err=True)
    if not as_json:
        typer.echo(f"{conn.counter.total} API calls", err=True)
