"""``SshHostCollector``: the ``Collector`` for Linux hosts over SSH.

``read`` logs in with the first profile that works (the one remembered on the host's CI first),
runs the fixed commands of ``commands.py`` and parses them into ``HostFacts``; ``transform`` turns
those into observations; the facts stay on the ``TargetResult`` for ``finish``, which maps application
dependencies across every host of the run (``depmap.py``). Paramiko is blocking, so each target runs
in a thread of the collector's own pool, sized to the run's concurrency (asyncio's default pool has
only a handful of threads). A host whose key changed, or that refuses every profile, is recorded
with its outcome and nothing is written for it; no host ever stops the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from cmdb.batch import Batch
from discovery.collector import Observed, OutcomeTable
from discovery.credentials import SshProfile
from discovery.hostkeys import KnownHosts
from discovery.outcomes import Outcome, TargetError, TargetResult
from discovery.ssh.commands import HostCommand, commands_for
from discovery.ssh.depmap import map_dependencies
from discovery.ssh.facts import HostFacts, build_facts
from discovery.ssh.parsers import FactsParseError
from discovery.ssh.session import HostSession
from discovery.ssh.transform import DEFAULT_PACKAGE_PATTERNS, SOURCE, host_facts
from discovery.targets import scope_of

log = logging.getLogger("cmdb.discovery.ssh")


class SshHostCollector:
    """Discovers Linux hosts over SSH; ``finish`` adds the cross-host dependency batches."""

    method = "ssh"
    source = SOURCE
    profile_attr: str | None = "ssh_profile"
    # paramiko's and the socket's errors are translated where the session meets them (``session``,
    # ``discovery.hostkeys``) into TargetErrors naming the host and profile; the parse error here.
    outcomes: OutcomeTable = ((FactsParseError, Outcome.PARSE_ERROR),)

    def __init__(self, profiles: Sequence[SshProfile], known_hosts: KnownHosts, *, concurrency: int = 16,
                 connect_timeout: float = 10.0, command_timeout: float = 30.0, port: int | None = None,
                 cert_paths: Sequence[str] = (), packages: Sequence[str] = DEFAULT_PACKAGE_PATTERNS) -> None:
        if not profiles:
            raise ValueError("SshHostCollector needs at least one SSH credential profile")
        self.profiles = list(profiles)
        self.known_hosts = known_hosts
        self.concurrency = concurrency
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.port = port
        self.commands: tuple[HostCommand, ...] = commands_for(cert_paths)
        self.cert_paths = list(cert_paths)
        self.packages = tuple(packages)
        self._pool: ThreadPoolExecutor | None = None

    async def read(self, target: str, remembered_profile: str | None) -> HostFacts:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ssh-discovery")
        loop = asyncio.get_running_loop()
        facts: HostFacts = await loop.run_in_executor(self._pool, self.read_sync, target, remembered_profile)
        return facts

    def transform(self, facts: HostFacts) -> Observed:
        """Pure: the host's parsed command output as observations."""
        return Observed(host_facts(facts, packages=self.packages), scope_of(facts.target), facts.complete,
                        describe(facts), facts.profile, keep={"host": facts})

    def ordered_profiles(self, remembered: str | None) -> list[SshProfile]:
        first = [p for p in self.profiles if p.name == remembered]
        return first + [p for p in self.profiles if p.name != remembered]

    def read_sync(self, target: str, remembered_profile: str | None = None) -> HostFacts:
        """One host, blocking: login, commands, parsed facts. Raises TargetError on failure."""
        refused: list[TargetError] = []
        for profile in self.ordered_profiles(remembered_profile):
            try:
                session = HostSession.open(target, profile, self.known_hosts, port=self.port,
                                           connect_timeout=self.connect_timeout)
            except TargetError as exc:
                if exc.outcome == Outcome.AUTH_FAILED:
                    refused.append(exc)
                    continue
                raise
            with session:
                return self.gather(target, session)
        if len(refused) == 1:
            raise refused[0]
        names = ", ".join(repr(p.name) for p in self.profiles)
        raise TargetError(Outcome.AUTH_FAILED, f"{target}: every profile was refused ({names}); check the keys or "
                          "passwords they name")

    def gather(self, target: str, session: HostSession) -> HostFacts:
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        outputs = session.run_commands(self.commands, timeout=self.command_timeout)
        try:
            return build_facts(target, session.peer_address, outputs, host_key=session.host_key,
                               profile=session.profile.name, collected_at=at, commands=self.commands,
                               cert_roots=self.cert_paths)
        except FactsParseError as exc:  # the same outcome as the table's, with the target and profile named
            raise TargetError(Outcome.PARSE_ERROR, f"{target}: {exc}", session.profile.name) from exc

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        """Dependency batches over every host that was discovered and written in this run."""
        hosts = [r.facts["host"] for r in results if r.outcome == Outcome.OK and isinstance(r.facts.get("host"),
                                                                                           HostFacts)]
        failed = [r.target for r in results if r.outcome != Outcome.OK]
        self.close()
        return map_dependencies(hosts, failed)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def describe(facts: HostFacts) -> str:
    """The run record's detail for a host: what it is, and which commands failed."""
    os = facts.os_release.get("PRETTY_NAME") or facts.os_release.get("NAME") or "unknown OS"
    parts = [f"{facts.label}: {os}"]
    if facts.failures:
        parts.append("partial: " + "; ".join(f"{k} {v}" for k, v in sorted(facts.failures.items())))
    return ", ".join(parts)
