"""``SnmpCollector``: one target = find a profile the agent answers, read its tables, transform.

Profiles are tried in order, the one that worked last time on this device first. A profile
"works" when the agent answers the system group with it; after that the tables are walked one
by one, and a table that fails (timeout, agent error) marks the batch incomplete, so lifecycle
ages nothing on the strength of a partial view, while what was read is still written.

When no profile works the target's outcome says why: ``auth_failed`` when the agent refused a
v3 user (it is there, the credentials are wrong), ``refused`` when nothing listens on the port,
``timeout`` when no profile got an answer (for v2c a wrong community looks exactly like that).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence

from cmdb.batch import Batch
from cmdb.errors import CmdbError, ConfigError
from discovery.collector import Observed, OutcomeTable
from discovery.credentials import SnmpProfile
from discovery.outcomes import Outcome, TargetError, TargetResult
from discovery.snmp.ber import Varbind
from discovery.snmp.client import (
    EnginePool,
    SnmpError,
    SnmpRefused,
    SnmpSession,
    SnmpSettings,
    SnmpTimeout,
    SnmpUnreachable,
    open_session,
    walk,
)
from discovery.snmp.oids import SYSTEM_SCALARS, TABLES, Table
from discovery.snmp.transform import SOURCE, RawDevice
from discovery.snmp.transform import transform as observe
from discovery.targets import scope_of

log = logging.getLogger("cmdb.discovery.snmp")

# When several profiles fail, the most telling outcome is reported: an agent that refused credentials is
# there; an ICMP "port unreachable" proves nobody is; silence proves nothing
_OUTCOME_RANK = (Outcome.AUTH_FAILED, Outcome.REFUSED, Outcome.UNREACHABLE, Outcome.TIMEOUT, Outcome.PARSE_ERROR,
                 Outcome.ERROR)


class SnmpCollector:
    """The SNMP discovery method (``discovery.runner.Collector``)."""

    method = "snmp"
    source = SOURCE
    profile_attr: str | None = "snmp_profile"
    # ``read`` reports the most telling failure over every profile tried as a TargetError; these are the
    # library's errors should one escape it.
    outcomes: OutcomeTable = ((SnmpTimeout, Outcome.TIMEOUT), (SnmpRefused, Outcome.REFUSED),
                              (SnmpUnreachable, Outcome.UNREACHABLE), (SnmpError, Outcome.ERROR))

    def __init__(self, profiles: Sequence[SnmpProfile], settings: SnmpSettings | None = None,
                 tables: Sequence[Table] = TABLES) -> None:
        if not profiles:
            raise ConfigError("SNMP discovery needs at least one snmp credential profile (--profile NAME)")
        self.profiles = list(profiles)
        self.settings = settings or SnmpSettings()
        self.tables = list(tables)
        self.engines = EnginePool()

    def order(self, remembered: str | None) -> list[SnmpProfile]:
        """The profiles to try: the remembered one first, then the others in the order given."""
        first = [p for p in self.profiles if p.name == remembered]
        return first + [p for p in self.profiles if p.name != remembered]

    def transform(self, raw: RawDevice) -> Observed:
        """Pure: the agent's var-binds as observations; complete only when every table walk succeeded."""
        detail = ""
        if raw.failed:
            detail = "partial: " + "; ".join(f"{name}: {why}" for name, why in raw.failed.items())
        return Observed(observe(raw), scope_of(raw.target), not raw.failed, detail, raw.profile)

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        self.close()
        return []

    def close(self) -> None:
        """Shuts the SNMPv3 engines (run_discovery does it through ``finish``)."""
        self.engines.close()

    async def read(self, target: str, remembered_profile: str | None = None) -> RawDevice:
        """Everything the agent at ``target`` tells with the first profile that works (I/O only)."""
        address = await resolve(target)
        failures: list[tuple[str, CmdbError]] = []
        refused_ports: set[int] = set()
        for profile in self.order(remembered_profile):
            if profile.port in refused_ports:
                continue  # nobody listens on that port: no other credential will do better there
            try:
                session = await open_session(address, profile, self.settings, self.engines)
            except (SnmpError, ConfigError) as exc:
                failures.append((profile.name, exc))
                continue
            try:
                try:
                    system = await session.get(SYSTEM_SCALARS)
                except SnmpError as exc:
                    log.debug("snmp %s: profile %s: %s", target, profile.name, exc)
                    failures.append((profile.name, exc))
                    if isinstance(exc, SnmpUnreachable):
                        break  # no route to the box: no profile can reach it
                    if isinstance(exc, SnmpRefused):
                        refused_ports.add(profile.port)
                    continue
                varbinds, failed = await self._tables(session)
            finally:
                session.close()
            return RawDevice(target, address, profile.name, system + varbinds, failed)
        raise _failure(target, failures)

    async def _tables(self, session: SnmpSession) -> tuple[list[Varbind], dict[str, str]]:
        varbinds: list[Varbind] = []
        failed: dict[str, str] = {}
        for n, table in enumerate(self.tables):
            try:
                varbinds += await walk(session, table.columns, self.settings)
            except SnmpTimeout as exc:
                failed[table.name] = str(exc)
                for rest in self.tables[n + 1:]:  # the agent went silent: do not wait for it table by table
                    failed[rest.name] = "not read after an earlier timeout"
                break
            except SnmpError as exc:
                failed[table.name] = str(exc)
        return varbinds, failed


async def resolve(target: str) -> str:
    """The address to poll: ``target`` itself when it is one, else its first address in DNS."""
    try:
        return str(ipaddress.ip_address(target))
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target, None, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise TargetError(Outcome.UNREACHABLE, f"{target}: cannot resolve the name ({exc.strerror or exc}); "
                          "check DNS or give the address") from exc
    return str(infos[0][4][0])


def _failure(target: str, failures: list[tuple[str, CmdbError]]) -> TargetError:
    def outcome_of(exc: CmdbError) -> Outcome:
        return exc.outcome if isinstance(exc, SnmpError) else Outcome.ERROR

    worst = min((outcome_of(e) for _, e in failures), key=_OUTCOME_RANK.index, default=Outcome.ERROR)
    reasons = "; ".join(f"profile {name}: {exc}" for name, exc in failures)
    if worst == Outcome.TIMEOUT:
        hint = "wrong v2c community, or no SNMP agent there"
    elif worst == Outcome.AUTH_FAILED:
        hint = "the agent refused the credentials; check the profiles"
    else:
        hint = ""
    message = f"{target}: no profile worked ({reasons})" + (f"; {hint}" if hint else "")
    error = TargetError(worst, message)
    for _, exc in failures:
        if outcome_of(exc) == worst:
            error.__cause__ = exc
            break
    return error
