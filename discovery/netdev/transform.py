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

from cmdb.batch import Batch, CIRecord, RelRecord
from discovery.netdev.platforms import Platform, neighbour_class
from discovery.netdev.records import InterfaceRecord, NeighbourRecord, Record, SystemRecord
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


def _put(attrs: dict[str, Any], **values: Any) -> dict[str, Any]:
    attrs.update({k: v for k, v in values.items() if v is not None and v != []})
    return attrs


def _addresses(interfaces: Sequence[InterfaceRecord]) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    out = []
    for itf in interfaces:
        for text in itf.addresses:
            try:
                out.append(ipaddress.ip_interface(text))
            except ValueError:
                continue
    return out


def device_batch(platform: Platform, view: DeviceView, reach: Reach, *, complete: bool) -> Batch:
    """The batch for one device; ``complete`` only when every command of the platform parsed."""
    system = view.system
    if not system.hostname:
        raise ValueError(f"{reach.target}: the device's hostname is unknown; cannot name its interfaces")
    hostname = system.hostname
    cls = platform.classify(system)
    batch = Batch(source=DEVICE_SOURCE, scope=scope_of(reach.target), complete=complete)
    ips = sorted({str(a.ip) for a in _addresses(view.interfaces)} | {reach.address},
                 key=lambda s: (ipaddress.ip_address(s).version, ipaddress.ip_address(s)))
    batch.cis.append(CIRecord(cls, _put(
        {}, hostname=hostname, fqdn=system.fqdn, serial_number=system.serial_number, model=system.model,
        vendor=platform.vendor, os=system.os or platform.os, os_version=system.os_version, management_ip=reach.address,
        ip_addresses=ips, mac_addresses=[system.base_mac] if system.base_mac else None,
        ssh_host_key=reach.host_key, ssh_profile=reach.profile,
    ), ref="device"))
    local_refs: dict[str, str] = {}

    def local_interface(name: str, rec: InterfaceRecord | None = None) -> str:
        ref = local_refs.get(name.lower())
        if ref is not None:
            return ref
        ref = local_refs[name.lower()] = f"if:{name}"
        attrs = _put({"device_name": hostname, "if_name": name})
        if rec is not None:
            _put(attrs, alias=rec.alias, mac_address=rec.mac_address, speed_mbps=rec.speed_mbps,
                 admin_status=rec.admin_status, oper_status=rec.oper_status)
        batch.cis.append(CIRecord("Interface", attrs, ref=ref))
        batch.rels.append(RelRecord("HAS_INTERFACE", "device", ref))
        return ref

    seen_ip: set[str] = set()
    seen_net: set[str] = set()
    for itf in view.interfaces:
        if_ref = local_interface(itf.if_name, itf)
        for addr in _addresses([itf]):
            ip_ref = f"ip:{addr.ip}"
            if ip_ref not in seen_ip:
                seen_ip.add(ip_ref)
                batch.cis.append(CIRecord("IPAddress", {"address": str(addr.ip)}, ref=ip_ref))
            batch.rels.append(RelRecord("HAS_ADDRESS", if_ref, ip_ref))
            if addr.network.prefixlen == addr.max_prefixlen:
                continue  # a host route (loopback /32) is no subnet
            net_ref = f"net:{addr.network}"
            if net_ref not in seen_net:
                seen_net.add(net_ref)
                batch.cis.append(CIRecord("Subnet", {"cidr": str(addr.network)}, ref=net_ref))
            batch.rels.append(RelRecord("IN_SUBNET", ip_ref, net_ref))

    for n, nb in enumerate(view.neighbours):
        src = local_interface(nb.local_interface)
        peer = f"peer:{n}"
        batch.cis.append(CIRecord("Interface", {"device_name": nb.remote_name, "if_name": nb.remote_interface},
                                  ref=peer))
        batch.rels.append(RelRecord("CONNECTED_TO", src, peer, {"protocol": nb.protocol}))
    return batch


def neighbour_batch(neighbours: Iterable[NeighbourRecord], discovered: Iterable[str], run_id: str) -> Batch | None:
    """Stub devices (with ``HAS_INTERFACE`` to the port a neighbour saw) for the neighbours this run
    did not reach itself and that advertise a management address (a name alone identifies nothing)."""
    known = {h.lower() for h in discovered}
    stubs: dict[str, tuple[NeighbourRecord, set[str]]] = {}
    for nb in neighbours:
        if nb.remote_name.lower() in known or not nb.management_ip:
            continue
        # The first advertisement seen gives the device's class and address; ports accumulate.
        stubs.setdefault(nb.remote_name.lower(), (nb, set()))[1].add(nb.remote_interface)
    if not stubs:
        return None
    batch = Batch(source=NEIGHBOUR_SOURCE, scope=f"neighbours:{run_id}", complete=False)
    for i, (nb, ports) in enumerate(stubs.values()):
        dev = f"dev:{i}"
        batch.cis.append(CIRecord(neighbour_class(nb), {
            "hostname": nb.remote_name, "management_ip": nb.management_ip, "ip_addresses": [nb.management_ip],
        }, ref=dev))
        for j, port in enumerate(sorted(ports)):
            itf = f"if:{i}:{j}"
            batch.cis.append(CIRecord("Interface", {"device_name": nb.remote_name, "if_name": port}, ref=itf))
            batch.rels.append(RelRecord("HAS_INTERFACE", dev, itf))
    return batch


def neighbours_from_facts(facts: Mapping[str, Any]) -> list[NeighbourRecord]:
    """The neighbour records a target kept in ``TargetResult.facts`` for the run-level step."""
    return [NeighbourRecord(**n) for n in facts.get("neighbours", [])]
