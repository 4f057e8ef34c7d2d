"""``cmdb discover devices``: network devices over SSH with netmiko."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from discovery.cli import RecordOpt
from discovery.credentials import SshProfile, load_credentials
from discovery.push import PushOpt, TokenFileOpt


def discover_devices(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(help="Addresses, CIDRs, ranges (10.0.0.5-9), names or @file.")],
    credentials: Annotated[Path | None, typer.Option(
        help="Credential profiles file (default: CMDB_CREDENTIALS or ~/.config/cmdb/credentials.yaml).")] = None,
    profile: Annotated[list[str] | None, typer.Option(
        "--profile", help="SSH profile to try, in order (repeatable; default: every ssh profile).")] = None,
    known_hosts: Annotated[Path | None, typer.Option(
        help="known_hosts file the host keys are checked against (default: the profile's, else "
             "~/.config/cmdb/known_hosts).")] = None,
    trust_on_first_use: Annotated[bool, typer.Option(
        "--trust-on-first-use", help="Record the key of a host not yet in known_hosts instead of refusing it.")
    ] = False,
    device_type: Annotated[str | None, typer.Option(
        help="cisco_ios, arista_eos, juniper_junos or cisco_nxos; default: the profile's, else detected.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Targets to leave out (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="Refuse target lists larger than this.")] = 4096,
    concurrency: Annotated[int, typer.Option(help="Devices talked to at the same time.")] = 16,
    connect_timeout: Annotated[float, typer.Option(help="Seconds for TCP connect, SSH banner and login.")] = 10.0,
    command_timeout: Annotated[float, typer.Option(help="Seconds one show command may take.")] = 30.0,
    target_timeout: Annotated[float, typer.Option(help="Seconds one device may take in all.")] = 300.0,
    push: PushOpt = None,
    token_file: TokenFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    record: RecordOpt = None,
) -> None:
    """Discover network devices over SSH: version, serial, interfaces, addresses, CDP/LLDP neighbours."""
    from discovery.cli import execute
    from discovery.netdev.collector import NetDeviceCollector
    from discovery.targets import expand_targets

    expanded = expand_targets(targets, exclude or [], limit)
    creds = load_credentials(credentials)
    profiles = [p for p in creds.pick(profile or [], "ssh") if isinstance(p, SshProfile)]
    collector = NetDeviceCollector(
        profiles, known_hosts, trust_on_first_use=trust_on_first_use, device_type=device_type,
        connect_timeout=connect_timeout, command_timeout=command_timeout, workers=concurrency,
    )
    execute(ctx, collector, expanded, concurrency=concurrency, target_timeout=target_timeout, as_json=as_json,
            record_dir=record,
            options={"profiles": [p.name for p in profiles],
                     "known_hosts": str(known_hosts) if known_hosts else "profile or default",
                     "trust_on_first_use": trust_on_first_use, "device_type": device_type,
                     "concurrency": concurrency, "connect_timeout": connect_timeout,
                     "command_timeout": command_timeout, "target_timeout": target_timeout,
                     "exclude": list(exclude or [])})


def register(app: typer.Typer, discover_app: typer.Typer) -> None:
    """Adds ``cmdb discover devices``."""
    discover_app.command("devices")(discover_devices)
