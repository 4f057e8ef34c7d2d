"""``cmdb discover ssh``: Linux hosts over SSH, and the application dependencies between them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmdb.errors import ConfigError
from discovery.cli import RecordOpt, execute
from discovery.push import PushOpt, TokenFileOpt

PACKAGES_HELP = ("Which installed packages become SoftwareInstall CIs: 'default' (servers, runtimes, TLS/SSH, "
                 "kernels), 'all', 'none', or comma-separated glob patterns (nginx*,openssl).")


def package_patterns(spec: str) -> tuple[str, ...]:
    from discovery.ssh.transform import DEFAULT_PACKAGE_PATTERNS

    spec = spec.strip()
    if spec == "default":
        return DEFAULT_PACKAGE_PATTERNS
    if spec == "all":
        return ("*",)
    if spec == "none":
        return ()
    patterns = tuple(p.strip() for p in spec.split(",") if p.strip())
    if not patterns:
        raise ConfigError("--packages: give default, all, none or glob patterns like nginx*,openssl")
    return patterns


def register(app: typer.Typer, discover_app: typer.Typer) -> None:
    del app

    @discover_app.command("ssh")
    def discover_ssh(
        ctx: typer.Context,
        targets: Annotated[list[str] | None, typer.Argument(
            help="Addresses, CIDRs, ranges (10.0.0.5-9), host names or @file.")] = None,
        credentials: Annotated[Path | None, typer.Option(
            "--credentials", help="Profiles file (default: CMDB_CREDENTIALS or ~/.config/cmdb/credentials.yaml).")
        ] = None,
        profile: Annotated[list[str] | None, typer.Option(
            "--profile", help="SSH profile(s) to try, in order (default: every ssh profile).")] = None,
        known_hosts: Annotated[Path | None, typer.Option(
            "--known-hosts", help="known_hosts file (default: the profile's, else ~/.config/cmdb/known_hosts).")
        ] = None,
        trust_on_first_use: Annotated[bool, typer.Option(
            "--trust-on-first-use", help="Accept and record the key of a host not yet in known_hosts.")] = False,
        exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Targets to leave out.")] = None,
        limit: Annotated[int, typer.Option(help="Refuse target lists longer than this.")] = 4096,
        concurrency: Annotated[int, typer.Option(help="Hosts discovered at once.")] = 16,
        connect_timeout: Annotated[float, typer.Option(help="Seconds to connect and log in.")] = 10.0,
        command_timeout: Annotated[float, typer.Option(help="Seconds each command may run on the host.")] = 30.0,
        target_timeout: Annotated[float | None, typer.Option(help="Seconds for one host in all.")] = None,
        port: Annotated[int | None, typer.Option(help="SSH port (default: the profile's, else 22).")] = None,
        cert_path: Annotated[list[str] | None, typer.Option(
            "--cert-path", help="Directory to search for certificate files (repeatable).")] = None,
        packages: Annotated[str, typer.Option(help=PACKAGES_HELP)] = "default",
        show_commands: Annotated[bool, typer.Option(
            "--show-commands", help="Print every command that would run on a host, and exit.")] = False,
        push: PushOpt = None,
        token_file: TokenFileOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
        record: RecordOpt = None,
    ) -> None:
        """Log in to Linux hosts over SSH (verified host keys, named credential profiles) and record the
        host, its interfaces, addresses, packages, listening applications and their dependencies."""
        from discovery.credentials import SshProfile, load_credentials
        from discovery.hostkeys import KnownHosts, default_known_hosts_path
        from discovery.ssh.collector import SshHostCollector
        from discovery.ssh.commands import commands_for, host_script
        from discovery.targets import expand_targets

        if show_commands:
            cmds = commands_for(cert_path or ())
            for cmd in cmds:
                typer.echo(f"# {cmd.name}: {cmd.why}{' (optional)' if cmd.optional else ''}"
                           f"{' (sudo -n when the profile has sudo: true)' if cmd.root_helps else ''}")
                typer.echo(cmd.text)
            typer.echo("\n# sent to `sh -s` as (TOKEN is random per session):")
            typer.echo(host_script(cmds, sudo=False, token="TOKEN", timeout=command_timeout))
            return
        if not targets:
            raise ConfigError("give at least one target (address, CIDR, range, host name or @file)")
        creds = load_credentials(credentials)
        profiles = [p for p in creds.pick(profile or [], "ssh") if isinstance(p, SshProfile)]
        kh_path = known_hosts or next((Path(p.known_hosts) for p in profiles if p.known_hosts), None) \
            or default_known_hosts_path()
        hosts = expand_targets(targets, exclude or [], limit)
        collector = SshHostCollector(
            profiles, KnownHosts(kh_path, trust_on_first_use), concurrency=concurrency,
            connect_timeout=connect_timeout, command_timeout=command_timeout, port=port,
            cert_paths=cert_path or (), packages=package_patterns(packages),
        )
        options = {
            "profiles": [p.name for p in profiles], "known_hosts": str(kh_path),
            "trust_on_first_use": trust_on_first_use, "concurrency": concurrency, "connect_timeout": connect_timeout,
            "command_timeout": command_timeout, "target_timeout": target_timeout, "port": port,
            "cert_paths": list(cert_path or ()), "packages": packages, "exclude": list(exclude or ()),
        }
        import logging

        # paramiko logs a traceback at ERROR for every host that does not answer; the run records the outcome.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        try:
            execute(ctx, collector, hosts, concurrency=concurrency, target_timeout=target_timeout, options=options,
                    as_json=as_json, record_dir=record)
        finally:
            collector.close()
