"""``cmdb scan``: TCP connect scan of addresses and ranges into the CMDB.

Typer and the CLI plumbing only; probing is ``probe``, the graph shape is ``transform``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from discovery.cli import RecordOpt
from discovery.push import PushOpt, TokenFileOpt
from discovery.targets import DEFAULT_LIMIT, expand_targets


def register(app: typer.Typer, discover_app: typer.Typer) -> None:
    """Adds the top-level ``cmdb scan`` command."""
    app.command("scan")(scan)


def scan(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(
        help="Addresses, CIDRs (10.0.0.0/24), ranges (10.0.0.5-9), host names or @file of those.")],
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", "-x", help="Addresses, CIDRs or ranges to leave out (repeat or comma-separate).")] = None,
    ports: Annotated[str | None, typer.Option(
        "--ports", "-p", help="Ports and ranges, e.g. 22,80,443,8000-8100 (default: about 40 common ports).")] = None,
    tls_ports: Annotated[str | None, typer.Option(
        "--tls-ports", help="Ports that speak TLS, beyond the well-known ones (443, 8443, 993 ...) always tried.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Connections open at once, for the whole scan.")] = 256,
    rate: Annotated[float, typer.Option(help="Connects started per second, for the whole scan (0: no limit).")
                    ] = 1000.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a connect before calling the port filtered.")
                       ] = 1.0,
    banner_timeout: Annotated[float, typer.Option(help="Seconds to wait for a server's greeting.")] = 0.5,
    tls_timeout: Annotated[float, typer.Option(help="Seconds to wait for a TLS handshake.")] = 3.0,
    dns_timeout: Annotated[float, typer.Option(help="Seconds to wait for a reverse (PTR) lookup.")] = 2.0,
    no_dns: Annotated[bool, typer.Option("--no-dns", help="Skip reverse DNS.")] = False,
    limit: Annotated[int, typer.Option(help="Refuse target lists longer than this.")] = DEFAULT_LIMIT,
    store: Annotated[str | None, typer.Option(
        "--store", help="Store URL (same as the global --store, accepted here too).")] = None,
    push: PushOpt = None,
    token_file: TokenFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    record: RecordOpt = None,
) -> None:
    """TCP connect scan: open ports, banners, TLS certificates and reverse DNS, one batch per address."""
    from cmdb.errors import BadInputError
    from discovery.certificates import SystemTrust
    from discovery.cli import execute
    from discovery.scan.collector import ScanCollector
    from discovery.scan.ports import DEFAULT_PORTS, WELL_KNOWN_TLS_PORTS, format_ports, parse_ports
    from discovery.scan.probe import ProbeSettings
    from discovery.scan.tls import chain_capability

    if store:
        ctx.find_root().params["store"] = store
    excluded = [part.strip() for spec in exclude or [] for part in spec.split(",") if part.strip()]
    target_list = expand_targets(targets, excluded, limit)
    port_list = parse_ports(ports) if ports else list(DEFAULT_PORTS)
    configured_tls = parse_ports(tls_ports, "--tls-ports") if tls_ports else []
    for name, value in (("--timeout", timeout), ("--banner-timeout", banner_timeout),
                        ("--tls-timeout", tls_timeout), ("--dns-timeout", dns_timeout)):
        if value <= 0:
            raise BadInputError(f"{name} must be a positive number of seconds, not {value:g}")
    if concurrency < 1:
        raise BadInputError(f"--concurrency must be at least 1, not {concurrency}")
    if rate < 0:
        raise BadInputError(f"--rate must be 0 (no limit) or a positive number of probes per second, not {rate:g}")
    settings = ProbeSettings(
        ports=tuple(port_list), tls_ports=frozenset(configured_tls) | WELL_KNOWN_TLS_PORTS,
        connect_timeout=timeout, banner_timeout=banner_timeout, tls_timeout=tls_timeout, dns=not no_dns,
        dns_timeout=dns_timeout, concurrency=concurrency, rate=rate or None,
    )
    collector = ScanCollector(settings, trust=SystemTrust.load())
    options = {
        "ports": format_ports(port_list), "tls_ports": format_ports(configured_tls) if configured_tls else "",
        "exclude": excluded, "concurrency": concurrency, "rate": rate, "timeout": timeout,
        "banner_timeout": banner_timeout, "tls_timeout": tls_timeout, "dns": not no_dns, "dns_timeout": dns_timeout,
        "tls_chain": chain_capability(),
    }
    try:
        execute(ctx, collector, target_list, concurrency=collector.target_concurrency(len(target_list)),
                target_timeout=None, options=options, as_json=as_json, record_dir=record)
    finally:
        collector.prober.close()
