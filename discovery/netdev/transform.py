"""Parsed records -> Batch (pure: no I/O, tested on the golden records in tests/data/netdev).

One device's batch (source ``ssh``, scope the target's /32) holds the device, its interfaces
(``HAS_INTERFACE``), their addresses (``HAS_ADDRESS``, ``IN_SUBNET``) and, for each CDP/LLDP
neighbour, a ``CONNECTED_TO`` from the local interface to a stub of the remote interface
(``device_name`` + ``if_name`` only, so the stub and the remote device's own record of the port
are one Interface by identity; see ``names`` for the spelling).

Stub devices for the neighbours come in a separate run-level batch (``neighbour_batch``) whose
source, ``neighbours``, ranks below every configured source: what a neighbour says about a device
(its class from capabilities, the address CDP advertises) must never overwrite what the device
says about itself when it is discovered too, or the two would take turns winning under the same
source on every run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from cmdb.batch import Batch
from discovery.netdev.platforms import Platform, neighbour_class
from discovery.netdev.records import InterfaceRecord, NeighbourRecord, Record, SystemRecord
from discovery.observations import Address, Device, Fact, Interface, NeighbourLink, to_batch
from discovery.targets import scope_of

DEVICE_SOURCE = "ssh"
NEIGHBOUR_SOURCE = "neighbours"


@dataclass(frozen=True)
class Reach:
    """How the device was reached: what the batch records about the session (no secret)."""

    target: str
    address: str
    host_key: str  # SHA256 fingerprint verified before login
    profile: str  # credential profile name


@dataclass
class DeviceView:
    """Everything one device's commands said, merged across commands."""

    system: SystemRecord
    interfaces: list[InterfaceRecord] = field(default_factory=list)
    neighbours: list[NeighbourRecord] = field(default_factory=list)


def merge_records(records: Iterable[Record]) -> DeviceView:
    """System facts: a later command's value wins (inventory refines show version); interfaces by
    name; neighbours once per (local port, remote device, remote port), protocols joined."""
    system = SystemRecord()
    interfaces: dict[str, InterfaceRecord] = {}
    neighbours: dict[tuple[str, str, str], NeighbourRecord] = {}
    for rec in records:
        if isinstance(rec, SystemRecord):
            for f in fields(SystemRecord):
                value = getattr(rec, f.name)
                if value is not None:
                    setattr(system, f.name, value)
        elif isinstance(rec, InterfaceRecord):
            old = interfaces.get(rec.if_name.lower())
            if old is None:
                interfaces[rec.if_name.lower()] = InterfaceRecord(**{f.name: getattr(rec, f.name)
                                                                     for f in fields(InterfaceRecord)})
                continue
            for f in fields(InterfaceRecord):
                value = getattr(rec, f.name)
                if f.name == "addresses":
                    old.addresses = sorted(set(old.addresses) | set(value))
                elif value is not None:
                    setattr(old, f.name, value)
        else:
            key = (rec.local_interface.lower(), rec.remote_name.lower(), rec.remote_interface.lower())
            seen = neighbours.get(key)
            if seen is None:
                neighbours[key] = NeighbourRecord(**{f.name: getattr(rec, f.name) for f in fields(NeighbourRecord)})
                continue
            if rec.protocol not in seen.protocol.split("+"):
                seen.protocol = "+".join(sorted({*seen.protocol.split("+"), rec.protocol}))
            seen.management_ip = seen.management_ip or rec.management_ip
            seen.platform = seen.platform or rec.platform
            seen.capabilities = sorted(set(seen.capabilities) | set(rec.capabilities))
    return DeviceView(system, list(interfaces.values()), list(neighbours.values()))


def _addresses(interfaces: Sequence[InterfaceRecord]) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    out = []
    for itf in interfaces:
        for text in itf.addresses:
            try:
                out.append(ipaddress.ip_interface(text))
            except ValueError:
                continue
    return out


def device_facts(platform: Platform, view: DeviceView, reach: Reach) -> list[Fact]:
    """What one device's commands amount to, as observations (pure)."""
    system = view.system
    if not system.hostname:
        raise ValueError(f"{reach.target}: the device's hostname is unknown; cannot name its interfaces")
    hostname = system.hostname
    facts: list[Fact] = [Device(
        platform.classify(system), hostname=hostname, fqdn=system.fqdn, management_ip=reach.address,
        ip_addresses=[str(a.ip) for a in _addresses(view.interfaces)] + [reach.address],
        macs=[system.base_mac] if system.base_mac else [], serial_number=system.serial_number, vendor=platform.vendor,
        model=system.model, os=system.os or platform.os, os_version=system.os_version,
        extra={"ssh_host_key": reach.host_key, "ssh_profile": reach.profile}, interface_owner=hostname,
    )]
    for itf in view.interfaces:
        facts.append(Interface(itf.if_name, alias=itf.alias, mac_address=itf.mac_address, speed_mbps=itf.speed_mbps,
                               admin_status=itf.admin_status, oper_status=itf.oper_status))
        for addr in _addresses([itf]):
            host_route = addr.network.prefixlen == addr.max_prefixlen  # a loopback /32 is no subnet
            facts.append(Address(str(addr.ip), interface=itf.if_name,
                                 subnet=None if host_route else str(addr.network)))
    facts += [NeighbourLink(nb.local_interface, nb.remote_name, nb.remote_interface,
                            frozenset(nb.protocol.split("+"))) for nb in view.neighbours]
    return facts


def device_batch(platform: Platform, view: DeviceView, reach: Reach, *, complete: bool) -> Batch:
    """The batch for one device; ``complete`` only when every command of the platform parsed."""
    return to_batch(DEVICE_SOURCE, scope_of(reach.target), complete, device_facts(platform, view, reach))


def neighbour_facts(neighbours: Iterable[NeighbourRecord], discovered: Iterable[str]) -> list[Fact]:
    """Stub devices (with the ports a neighbour saw) for the neighbours this run did not reach itself
    and that advertise a management address (a name alone identifies nothing)."""
    known = {h.lower() for h in discovered}
    stubs: dict[str, tuple[NeighbourRecord, set[str]]] = {}
    for nb in neighbours:
        if nb.remote_name.lower() in known or not nb.management_ip:
            continue
        # The first advertisement seen gives the device's class and address; ports accumulate.
        stubs.setdefault(nb.remote_name.lower(), (nb, set()))[1].add(nb.remote_interface)
    facts: list[Fact] = []
    for nb, ports in stubs.values():
        facts.append(Device(neighbour_class(nb), hostname=nb.remote_name, management_ip=nb.management_ip,
                            ip_addresses=[nb.management_ip] if nb.management_ip else [],
                            interface_owner=nb.remote_name))
        facts += [Interface(port) for port in sorted(ports)]
    return facts


def neighbour_batch(neighbours: Iterable[NeighbourRecord], discovered: Iterable[str], run_id: str) -> Batch | None:
    """The run-level batch of neighbour stubs, None when there is none."""
    facts = neighbour_facts(neighbours, discovered)
    return to_batch(NEIGHBOUR_SOURCE, f"neighbours:{run_id}", False, facts) if facts else None


def neighbours_from_facts(facts: Mapping[str, Any]) -> list[NeighbourRecord]:
    """The neighbour records a target kept in ``TargetResult.facts`` for the run-level step."""
    return [NeighbourRecord(**n) for n in facts.get("neighbours", [])]
