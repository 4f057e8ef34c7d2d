"""``cmdb discover snmp``: poll SNMP agents into the CMDB.

Typer and the CLI plumbing only; the wire is ``client``, the graph shape is ``transform``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from discovery.cli import RecordOpt
from discovery.push import PushOpt, TokenFileOpt
from discovery.targets import DEFAULT_LIMIT, expand_targets


def register(app: typer.Typer, discover_app: typer.Typer) -> None:
    """Adds ``cmdb discover snmp``."""
    discover_app.command("snmp")(snmp)


def snmp(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(
        help="Addresses, CIDRs (10.0.0.0/24), ranges (10.0.0.5-9), host names or @file of those.")],
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", "-P", help="SNMP credential profile to try, in order (repeat); default: every snmp profile.")
    ] = None,
    credentials: Annotated[str | None, typer.Option(
        "--credentials", help="Profiles file (default: CMDB_CREDENTIALS or ~/.config/cmdb/credentials.yaml).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", "-x", help="Addresses, CIDRs or ranges to leave out (repeat or comma-separate).")] = None,
    concurrency: Annotated[int, typer.Option(help="Agents polled at once.")] = 32,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer before retrying.")] = 2.0,
    retries: Annotated[int, typer.Option(help="Retransmissions of an unanswered request.")] = 1,
    max_repetitions: Annotated[int, typer.Option(help="Rows asked for in each GETBULK request.")] = 25,
    target_timeout: Annotated[float | None, typer.Option(help="Give up on one agent after this many seconds.")
                              ] = None,
    limit: Annotated[int, typer.Option(help="Refuse target lists longer than this.")] = DEFAULT_LIMIT,
    push: PushOpt = None,
    token_file: TokenFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    record: RecordOpt = None,
) -> None:
    """SNMP v2c/v3: system, interfaces, addresses, chassis, LLDP/CDP neighbours and ARP, one batch per agent."""
    from cmdb.errors import BadInputError
    from discovery.cli import execute
    from discovery.credentials import SnmpProfile, load_credentials
    from discovery.snmp.client import SnmpSettings
    from discovery.snmp.collector import SnmpCollector

    excluded = [part.strip() for spec in exclude or [] for part in spec.split(",") if part.strip()]
    target_list = expand_targets(targets, excluded, limit)
    for name, value in (("--timeout", timeout), ("--target-timeout", target_timeout or 1.0)):
        if value <= 0:
            raise BadInputError(f"{name} must be a positive number of seconds, not {value:g}")
    if retries < 0:
        raise BadInputError(f"--retries must be 0 or more, not {retries}")
    if not 1 <= max_repetitions <= 1000:
        raise BadInputError(f"--max-repetitions must be between 1 and 1000, not {max_repetitions}")
    if concurrency < 1:
        raise BadInputError(f"--concurrency must be at least 1, not {concurrency}")
    profiles = [p for p in load_credentials(credentials).pick(profile or [], "snmp") if isinstance(p, SnmpProfile)]
    collector = SnmpCollector(profiles, SnmpSettings(timeout=timeout, retries=retries,
                                                     max_repetitions=max_repetitions))
    options = {"profiles": [p.name for p in profiles], "exclude": excluded, "concurrency": concurrency,
               "timeout": timeout, "retries": retries, "max_repetitions": max_repetitions,
               "target_timeout": target_timeout}
    execute(ctx, collector, target_list, concurrency=concurrency, target_timeout=target_timeout, options=options,
            as_json=as_json, record_dir=record)
