"""``NetDeviceCollector``: network devices over SSH (netmiko), one worker thread per device at a time.

For each target: verify the host key without logging in, log in with the first credential profile
that authenticates (the one that worked last time first), detect the platform when no device type
is given, run the platform's fixed show commands and parse them (``platforms``): that is ``read``;
``transform`` turns the records into observations. netmiko blocks, so each target runs in a thread
of a pool as large as the run's concurrency; every wait inside is bounded (connect, banner, auth and
per-command timeouts).

Outcomes: a changed host key is ``host_key_changed`` and an unknown one ``host_key_unknown``
(nothing written for that device); no profile authenticating is ``auth_failed``; a command that
names the device (``show version``) not parsing is ``parse_error`` naming the command; another
command not parsing still writes what was learnt, as a partial view (``complete`` false, the
command named in the detail).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cmdb.batch import Batch
from cmdb.errors import ConfigError
from discovery.collector import Observed, OutcomeTable
from discovery.credentials import SshProfile
from discovery.hostkeys import KnownHosts, default_known_hosts_path
from discovery.netdev.platforms import CommandParseError, parse_command, platform_for
from discovery.netdev.records import Record, as_dict
from discovery.netdev.session import DeviceSession, resolve_address
from discovery.netdev.transform import (
    DEVICE_SOURCE,
    Reach,
    device_facts,
    merge_records,
    neighbour_batch,
    neighbours_from_facts,
)
from discovery.outcomes import Outcome, TargetError, TargetResult
from discovery.targets import scope_of

log = logging.getLogger("cmdb.discovery.netdev")


@dataclass
class DeviceReading:
    """What one device said: its parsed records, how it was reached, which commands did not parse."""

    device_type: str
    reach: Reach
    records: list[Record]
    failed: list[str] = field(default_factory=list)


class NetDeviceCollector:
    """Discovers network devices (cisco_ios, arista_eos, juniper_junos, cisco_nxos) with netmiko."""

    method = "netdev"
    source = DEVICE_SOURCE
    profile_attr: str | None = "ssh_profile"
    # netmiko's and paramiko's errors are translated in ``session`` (they need the step and the host to
    # say what to do); a device that cannot be named (no hostname) is a parse error.
    outcomes: OutcomeTable = ((CommandParseError, Outcome.PARSE_ERROR), (ValueError, Outcome.PARSE_ERROR))

    def __init__(
        self,
        profiles: Sequence[SshProfile],
        known_hosts: Path | str | None = None,
        *,
        trust_on_first_use: bool = False,
        device_type: str | None = None,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        workers: int = 16,
    ) -> None:
        if not profiles:
            raise ConfigError("network device discovery needs at least one SSH credential profile")
        if device_type is not None:
            try:
                platform_for(device_type)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.profiles = list(profiles)
        self.known_hosts_path = Path(known_hosts).expanduser() if known_hosts else None
        self.trust_on_first_use = trust_on_first_use
        self.device_type = device_type
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.workers = max(1, workers)
        self._known_hosts: dict[Path, KnownHosts] = {}
        self._pool: ThreadPoolExecutor | None = None

    def known_hosts_for(self, profile: SshProfile) -> KnownHosts:
        """The run's known_hosts file, else the profile's, else ~/.config/cmdb/known_hosts."""
        path = self.known_hosts_path or (Path(profile.known_hosts).expanduser() if profile.known_hosts
                                         else default_known_hosts_path())
        kh = self._known_hosts.get(path)
        if kh is None:
            kh = self._known_hosts[path] = KnownHosts(path, self.trust_on_first_use)
        return kh

    async def read(self, target: str, remembered_profile: str | None) -> DeviceReading:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="netdev")
        order = sorted(self.profiles, key=lambda p: p.name != remembered_profile)
        reading: DeviceReading = await asyncio.get_running_loop().run_in_executor(
            self._pool, self.read_blocking, target, order)
        return reading

    def transform(self, raw: DeviceReading) -> Observed:
        """Pure: the parsed records as observations; complete only when every command parsed."""
        platform = platform_for(raw.device_type)
        view = merge_records(raw.records)
        facts = device_facts(platform, view, raw.reach)
        detail = f"{platform.device_type} {view.system.hostname}"
        if raw.failed:
            detail += "; partial view, not parsed: " + "; ".join(raw.failed)
        return Observed(facts, scope_of(raw.reach.target), not raw.failed, detail, raw.reach.profile, keep={
            "hostname": view.system.hostname, "device_type": platform.device_type,
            "neighbours": [{k: v for k, v in as_dict(n).items() if k != "kind"} for n in view.neighbours],
        })

    def read_blocking(self, target: str, profiles: Sequence[SshProfile]) -> DeviceReading:
        """One target, synchronously: the first profile that authenticates is used."""
        refused: list[str] = []
        fingerprints: dict[tuple[Path, int], str] = {}
        for profile in profiles:
            address = resolve_address(target, profile.port, self.connect_timeout)
            known_hosts = self.known_hosts_for(profile)
            key = (known_hosts.path, profile.port)
            if key not in fingerprints:
                try:
                    fingerprints[key] = known_hosts.check_server(address, profile.port, self.connect_timeout)
                except TargetError as exc:  # its message names the address and what to do
                    raise TargetError(exc.outcome, str(exc), profile.name) from exc
            try:
                return self._collect_with(target, address, profile, known_hosts, fingerprints[key])
            except TargetError as exc:
                if exc.outcome != Outcome.AUTH_FAILED:
                    raise
                refused.append(profile.name)
        raise TargetError(Outcome.AUTH_FAILED, f"{target}: no credential profile authenticated (tried "
                          f"{', '.join(refused)}); check the username and password or key")

    def _collect_with(self, target: str, address: str, profile: SshProfile, known_hosts: KnownHosts,
                      fingerprint: str) -> DeviceReading:
        device_type = self.device_type or profile.device_type
        records: list[Record] = []
        failed: list[CommandParseError] = []
        with DeviceSession(address, profile.port, profile, known_hosts, device_type=device_type,
                           connect_timeout=self.connect_timeout, command_timeout=self.command_timeout) as session:
            assert session.device_type is not None
            platform = platform_for(session.device_type)
            for command in platform.commands:
                raw = session.run(command.text)
                try:
                    records.extend(parse_command(platform.device_type, command, raw))
                except CommandParseError as exc:
                    if command.essential:
                        raise TargetError(Outcome.PARSE_ERROR, f"{target} ({platform.device_type}): {exc}; nothing "
                                          "was written for this device", profile.name) from exc
                    log.warning("%s (%s): %s", target, platform.device_type, exc)
                    failed.append(exc)
        reach = Reach(target=target, address=address, host_key=fingerprint, profile=profile.name)
        return DeviceReading(platform.device_type, reach, records, [str(e) for e in failed])

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        """Stub devices for the neighbours no target of this run turned out to be."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        ok = [r for r in results if r.outcome == Outcome.OK and r.facts.get("hostname")]
        discovered = [str(r.facts["hostname"]) for r in ok]
        neighbours = [n for r in ok for n in neighbours_from_facts(r.facts)]
        batch = neighbour_batch(neighbours, discovered, run_id)
        return [batch] if batch is not None else []
