"""Raw probe results -> observations per target (pure: no I/O, tested on ``tests/data/scan/*.json``).

``verdict`` (called by the collector's ``read``) raises when no probe got a definite answer, the
outcome then coming from ``SCAN_OUTCOMES``; ``observe`` is the transform; ``transform_scan`` does both
and ``to_batch``, as a run does, for tests.

What a scanned address becomes (source ``scan``, scope ``<address>/32``):

- at least one open port: a ``Host`` (management_ip and ip_addresses = the address, hostname/fqdn
  from reverse DNS), an ``IPAddress`` (address, dns_name) with Host HAS_ADDRESS IPAddress, one
  ``ServiceEndpoint`` per open port (address, port, tcp, service guess, banner, tls, host_name) with
  ServiceEndpoint RUNS_ON Host, and a ``Certificate`` per certificate the endpoint served with
  ServiceEndpoint USES_CERTIFICATE Certificate. The leaf has ``chain_position`` 0 on that edge;
  intermediates (and a root, if the server sends one) are linked too with positions 1, 2 ...,
  because a served intermediate that expires breaks clients as surely as the leaf does (the
  AddTrust root expiry of 2020 broke clients through a served chain certificate);
- no open port and every port refused: an empty complete batch, so lifecycle ages what the scan
  saw there before (outcome ok);
- no open port, some ports filtered: no batch (nothing definite to say; outcome ok);
- every port filtered: outcome timeout; no port open or refused and a port unreachable: unreachable.

``complete`` is True only when every port got a definite answer (open or refused) and every
attempted TLS handshake ended (succeeded or was refused by the peer) and every served certificate
parsed: a timeout anywhere leaves the target partial, so nothing it failed to see is aged.

Names: a reverse-DNS name gives ``hostname`` (first label) and ``fqdn`` (when dotted); names of the
loopback kind (``localhost``) are kept on the IPAddress only, since many boxes share them.
``tls_verified`` (whether the served chain verifies against the system store) is written on the
ServiceEndpoint when the schema has that attribute, and is always in the raw result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import CmdbError
from cmdb.model import Schema, default_schema
from discovery.certificates import describe_certificate
from discovery.collector import Observed, OutcomeTable, outcome_of
from discovery.observations import Address, Certificate, Device, Endpoint, Fact, to_batch
from discovery.outcomes import Outcome
from discovery.scan.probe import CLOSED, FILTERED, OPEN, UNREACHABLE
from discovery.services import guess_service
from discovery.targets import scope_of

SOURCE = "scan"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
TLS_VERIFIED_ATTR = "tls_verified"


@dataclass
class ScanReading:
    """What one target's probes amount to: the run outcome, a one-line detail and the batch (or None)."""

    outcome: Outcome
    detail: str
    batch: Batch | None
    complete: bool = False


def names_of(raw: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(dns_name, hostname, fqdn) from reverse DNS, else from the name the target was given as."""
    dns_name = raw.get("ptr") or raw.get("name")
    if not dns_name:
        return None, None, None
    dns_name = str(dns_name).rstrip(".").lower()
    if dns_name in LOOPBACK_NAMES or dns_name.startswith("localhost."):
        return dns_name, None, None
    hostname = dns_name.split(".", 1)[0]
    fqdn = dns_name if "." in dns_name and not dns_name.replace(".", "").isdigit() else None
    return dns_name, hostname, fqdn


class ScanFailure(CmdbError):
    """No probe of a target got a definite answer; the subclass says how (``SCAN_OUTCOMES``)."""


class PortsFiltered(ScanFailure):
    """Every probe timed out."""


class TargetUnreachable(ScanFailure):
    """The host or its network is unreachable."""


class ProbesFailed(ScanFailure):
    """The probes failed locally (permissions, resources)."""


SCAN_OUTCOMES: OutcomeTable = ((PortsFiltered, Outcome.TIMEOUT), (TargetUnreachable, Outcome.UNREACHABLE),
                               (ProbesFailed, Outcome.ERROR))


def _summary(ports: list[Mapping[str, Any]]) -> str:
    states = [str(p["state"]) for p in ports]
    counts = {s: states.count(s) for s in (OPEN, CLOSED, FILTERED, UNREACHABLE) if s in states}
    others = len(states) - sum(counts.values())
    return ", ".join(f"{n} {s}" for s, n in counts.items()) + (f", {others} error" if others else "")


def verdict(raw: Mapping[str, Any]) -> None:
    """Raises the ``ScanFailure`` a target's probes amount to when none of them was answered (no port
    open or refused); returns when there is something definite to say, even "nothing open"."""
    target = str(raw["target"])
    ports: list[Mapping[str, Any]] = list(raw.get("ports") or [])
    states = [str(p["state"]) for p in ports]
    if OPEN in states or CLOSED in states:
        return
    summary = _summary(ports)
    if UNREACHABLE in states:
        raise TargetUnreachable(f"{target}: host or network unreachable ({summary}); check the route or drop it "
                                "from the targets")
    if states and all(s == FILTERED for s in states):
        raise PortsFiltered(f"{target}: every probe timed out ({summary}); the host is down or filtered, or raise "
                            "--timeout")
    errors = sorted({str(p.get("error") or "error") for p in ports})
    raise ProbesFailed(f"{target}: probes failed ({summary}): {'; '.join(errors)}")


def transform_scan(raw: Mapping[str, Any], schema: Schema | None = None) -> ScanReading:
    """One target's raw probe result as a ScanReading (outcome, detail, batch): ``verdict`` then
    ``observe`` and ``to_batch``, as the runner does them."""
    try:
        verdict(raw)
    except ScanFailure as exc:
        return ScanReading(outcome_of(exc, SCAN_OUTCOMES), str(exc), None)
    seen = observe(raw, schema)
    batch = None if seen.facts is None else to_batch(SOURCE, seen.scope, seen.complete, seen.facts)
    return ScanReading(Outcome.OK, seen.detail, batch, seen.complete)


def observe(raw: Mapping[str, Any], schema: Schema | None = None) -> Observed:
    """Pure: one target's answered probes as observations."""
    schema = schema or default_schema()
    target, address = str(raw["target"]), str(raw["address"])
    ports: list[Mapping[str, Any]] = list(raw.get("ports") or [])
    states = [str(p["state"]) for p in ports]
    opened = [p for p in ports if p["state"] == OPEN]
    summary = _summary(ports)
    scope = scope_of(target)
    if not opened:  # every port refused: a complete look that found nothing; else nothing definite
        everything_closed = bool(states) and all(s == CLOSED for s in states)
        return Observed([] if everything_closed else None, scope, everything_closed, f"no open port ({summary})")

    complete = all(s in (OPEN, CLOSED) for s in states)
    dns_name, hostname, fqdn = names_of(raw)
    facts: list[Fact] = [
        Device("Host", hostname=hostname, fqdn=fqdn, management_ip=address, ip_addresses=[address]),
        Address(address, on_device=True, dns_name=dns_name),
    ]
    endpoint_attrs = schema.ci_class("ServiceEndpoint").attributes
    fingerprints: set[str] = set()
    notes: list[str] = []
    shown: list[str] = []
    for p in sorted(opened, key=lambda p: int(p["port"])):
        port = int(p["port"])
        tls_raw: Mapping[str, Any] = p.get("tls") or {}
        banner = p.get("banner")
        tls: bool | None = None
        if tls_raw.get("status") == "ok":
            tls = True
        elif tls_raw.get("status") == "failed" or banner:
            tls = False
        elif tls_raw.get("status") == "timeout":
            complete = False
            notes.append(f"{port}: TLS handshake timed out")
        service = guess_service(port, banner, tls)
        shown.append(f"{port} {service}" if service else str(port))
        verified = (bool(tls_raw["trusted"]) if tls and tls_raw.get("trusted") is not None
                    and TLS_VERIFIED_ATTR in endpoint_attrs else None)
        facts.append(Endpoint(address, port, "tcp", service=service, banner=banner or None, tls=tls,
                              tls_verified=verified, host_name=hostname))
        for position, pem in enumerate(tls_raw.get("chain") or []):
            try:
                cert = describe_certificate(str(pem))
            except ValueError as exc:
                complete = False
                notes.append(f"{port}: certificate {position} unparseable ({exc})")
                continue
            fingerprints.add(cert["fingerprint_sha256"])
            facts.append(Certificate(**cert, used_by=(address, port), chain_position=position))

    detail = f"{summary}: {', '.join(shown)}" + (f" ({len(fingerprints)} certificates)" if fingerprints else "")
    if not complete:
        detail += "; partial" + (f": {'; '.join(notes)}" if notes else " (some ports filtered)")
    return Observed(facts, scope, complete, detail)
