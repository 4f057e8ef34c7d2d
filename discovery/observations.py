"""Typed observations: what a discovery method saw, before it is CIs; and ``to_batch``, the one place
that turns them into a ``Batch``.

Every method (scan, snmp, ssh, netdev, aws; importers next) ``transform``s what it read into these
facts and nothing else; ``to_batch`` alone decides what the graph gets from them, so the methods
cannot drift apart:

* refs and item numbering (``Batch.add_ci`` / ``Batch.add_rel``: an error names ``cis[5]``, not
  ``cis[0]``), one item per identity (an address seen twice is one IPAddress);
* the spelling of interface and device names (``discovery.names``: long interface names, short
  host names), so the same port reported by SNMP, LLDP, CDP and netmiko is one Interface;
* which MACs identify the box (``cmdb.model.identifying_mac``: never virtual-router, multicast or
  all-zero MACs, for every method);
* the neighbour-protocol spelling (``cdp+lldp``: every protocol that reported the link, sorted);
* the shape of the device subgraph: Device -HAS_INTERFACE-> Interface -HAS_ADDRESS-> IPAddress
  -IN_SUBNET-> Subnet; Interface -CONNECTED_TO-> the neighbour's Interface; ServiceEndpoint,
  SoftwareInstall and Application -RUNS_ON-> Device; Application -LISTENS_ON-> ServiceEndpoint;
  user -USES_CERTIFICATE-> Certificate; Application -DEPENDS_ON-> Application or ServiceEndpoint;
* cloud APIs (AWS): ``CloudResource`` (any class, named by its strongest identity key: ARN or provider
  id; ``mac_addresses``/``mac_address`` follow the same MAC rule as devices) and ``CloudLink`` between
  resources, an end either a resource of the same batch (its key value) or a CI another batch wrote
  (``Identity``: class and key, resolved by ingest).

A fact names other facts by their identity (an interface by its name, an endpoint by address and
port, an application by its name), never by a ref.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cmdb.batch import Batch, IdentityRef, Ref
from cmdb.model import identifying_mac
from discovery.names import long_interface_name, short_hostname

DEVICE_REF = "device"


@dataclass
class Device:
    """The box itself: its class and what identifies it; ``extra`` holds class- and method-specific
    attributes (``snmp_profile``, ``ssh_host_key``, ``hypervisor`` ...)."""

    cls: str
    hostname: str | None = None
    fqdn: str | None = None
    management_ip: str | None = None
    ip_addresses: list[str] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)  # every MAC of its own ports; the identifying ones are kept
    serial_number: str | None = None
    vendor: str | None = None
    model: str | None = None
    os: str | None = None
    os_version: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    interface_owner: str | None = None  # the device_name of its interfaces, when not its short host name

    def device_name(self) -> str:
        """What its Interfaces carry as ``device_name``: the short host name, else the address."""
        if self.interface_owner:
            return self.interface_owner
        if self.hostname:
            return short_hostname(self.hostname)
        return self.management_ip or ""


@dataclass
class Interface:
    """One of the device's interfaces."""

    if_name: str
    alias: str | None = None
    description: str | None = None
    mac_address: str | None = None
    speed_mbps: int | None = None
    admin_status: str | None = None
    oper_status: str | None = None


@dataclass
class Address:
    """An IP address. ``own``: the device's (related to it and to ``interface``); else another box's
    address seen from here (an ARP entry: only the address and the MAC it answers with)."""

    address: str
    interface: str | None = None  # if_name of the device's interface it is on
    subnet: str | None = None  # CIDR of its subnet (none for a host route)
    on_device: bool = False  # Device -HAS_ADDRESS-> it, besides the interface's
    prefix_length: int | None = None  # noted on the interface's HAS_ADDRESS
    dns_name: str | None = None
    mac_address: str | None = None
    own: bool = True


@dataclass
class NeighbourLink:
    """A CDP/LLDP neighbour: ``local_interface`` of the device is cabled to ``remote_interface`` of
    ``remote_device`` (as that box names itself and its port)."""

    local_interface: str
    remote_device: str
    remote_interface: str
    protocols: frozenset[str]


@dataclass
class Endpoint:
    """A TCP/UDP service on an address. ``on_device``: it runs on the device (else a remote one that
    an application of the device talks to)."""

    address: str
    port: int
    protocol: str = "tcp"
    service: str | None = None
    banner: str | None = None
    tls: bool | None = None
    tls_verified: bool | None = None
    process: str | None = None
    host_name: str | None = None
    served_by: tuple[str, ...] = ()  # names of the device's Applications listening on it
    on_device: bool = True


@dataclass
class Application:
    """A process serving or using the network: an ``Application`` or a ``Database`` CI by ``cls``.
    ``on_device``: it runs on the device (else another host's, named by a dependency)."""

    name: str
    cls: str = "Application"
    process: str | None = None
    engine: str | None = None
    port: int | None = None
    description: str | None = None
    on_device: bool = True


@dataclass
class Certificate:
    """A certificate (``discovery.certificates.describe_certificate``) and who uses it: an endpoint
    ``(address, port)``, an application by name, or the device (None)."""

    subject: str
    issuer: str
    serial: str
    fingerprint_sha256: str
    not_before: str
    not_after: str
    sans: list[str] = field(default_factory=list)
    used_by: tuple[str, int] | str | None = None
    chain_position: int | None = None
    path: str | None = None


@dataclass
class Software:
    """An installed package."""

    product: str
    host_name: str
    version: str | None = None
    vendor: str | None = None


@dataclass
class Dependency:
    """Evidence that application ``client`` uses ``server``: an application by name or an endpoint
    ``(address, port)``; ``attrs`` say how it was seen (evidence, ports, seen_at ...)."""

    client: str
    server: str | tuple[str, int]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class CloudResource:
    """A resource a cloud API reported. ``key`` is its strongest identity (attribute, value), the ARN or
    the provider's id; its value names it in ``CloudLink``s. ``attrs`` carry ``account_id`` and ``region``."""

    cls: str
    key: tuple[str, str]
    attrs: dict[str, Any]

    @property
    def ref(self) -> str:
        return self.key[1]


@dataclass(frozen=True)
class Identity:
    """A CI written by another batch (another scope of the run), named by class and one identity key."""

    cls: str
    key: tuple[str, str]


@dataclass(frozen=True)
class CloudLink:
    """A relationship between cloud resources (membership is ``MEMBER_OF``): an end is the key value of
    a ``CloudResource`` of the same batch, or an ``Identity``."""

    type: str
    src: str | Identity
    dst: str | Identity
    attrs: tuple[tuple[str, Any], ...] = ()


Fact = (Device | Interface | Address | NeighbourLink | Endpoint | Application | Certificate | Software | Dependency
        | CloudResource | CloudLink)


def _clean(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def _unicast_mac(mac: str | None) -> str | None:
    """An interface's own MAC as an attribute: none for all-zero or group addresses."""
    if mac is None or mac == "00:00:00:00:00:00":
        return None
    try:
        return None if int(mac[:2], 16) & 1 else mac
    except ValueError:
        return None


def _address_order(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    return addr.version, int(addr)


def to_batch(source: str, scope: str | None, complete: bool, facts: Iterable[Fact]) -> Batch:
    """The batch for one target's facts (source, scope and completeness are the method's to say)."""
    return _Builder(Batch(source=source, scope=scope, complete=complete)).build(list(facts))


class _Builder:
    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.refs: set[str] = set()
        self.rels: set[tuple[str, Ref, Ref]] = set()
        self.device_name = ""
        self.device_ref: str | None = None
        self.prefix = ""  # of the refs of the second and later devices' interfaces

    def ci(self, ref: str, cls: str, attrs: dict[str, Any]) -> str:
        if ref not in self.refs:
            self.refs.add(ref)
            self.batch.add_ci(cls, attrs, ref)
        return ref

    def rel(self, rtype: str, src: Ref, dst: Ref, attrs: dict[str, Any] | None = None) -> None:
        """One relationship per (type, from, to): the first seen keeps its attributes."""
        if (rtype, src, dst) not in self.rels:
            self.rels.add((rtype, src, dst))
            self.batch.add_rel(rtype, src, dst, attrs or {})

    def local_interface(self, name: str, itf: Interface | None = None) -> str:
        if_name = long_interface_name(name)
        ref = f"if:{self.prefix}{if_name.lower()}"
        if ref in self.refs:
            return ref
        attrs: dict[str, Any] = {"device_name": self.device_name, "if_name": if_name}
        if itf is not None:
            attrs.update(_clean(alias=itf.alias, description=itf.description if itf.description != if_name else None,
                                mac_address=_unicast_mac(itf.mac_address), speed_mbps=itf.speed_mbps,
                                admin_status=itf.admin_status, oper_status=itf.oper_status))
        self.ci(ref, "Interface", attrs)
        if self.device_ref is not None:
            self.rel("HAS_INTERFACE", self.device_ref, ref)
        return ref

    def remote_interface(self, device: str, name: str) -> str:
        device_name, if_name = short_hostname(device), long_interface_name(name)
        return self.ci(f"peer:{device_name.lower()}:{if_name.lower()}", "Interface",
                       {"device_name": device_name, "if_name": if_name})

    def endpoint_ref(self, address: str, port: int) -> str:
        return f"ep:{address}:{port}"

    def build(self, facts: list[Fact]) -> Batch:
        """Facts after a Device are about that device (usually the only one; a run-level batch of
        neighbour stubs has several)."""
        groups: list[list[Fact]] = [[]]
        for f in facts:
            if isinstance(f, Device) and (groups[-1] and any(isinstance(g, Device) for g in groups[-1])):
                groups.append([])
            groups[-1].append(f)
        for n, group in enumerate(groups):
            self.prefix = f"{n}:" if n else ""
            self.device_ref = None
            self.device_name = ""
            self.group(group, DEVICE_REF if n == 0 else f"{DEVICE_REF}:{n}")
        return self.batch

    def group(self, facts: list[Fact], device_ref: str) -> None:
        for f in facts:
            if isinstance(f, Device):
                self.device(f, device_ref)
        for f in facts:
            if isinstance(f, Interface):
                self.local_interface(f.if_name, f)
        for f in facts:
            if isinstance(f, Address) and f.own:
                self.address(f)
        links: dict[tuple[str, str, str], NeighbourLink] = {}
        for f in facts:
            if isinstance(f, NeighbourLink):
                key = (long_interface_name(f.local_interface).lower(), short_hostname(f.remote_device).lower(),
                       long_interface_name(f.remote_interface).lower())
                seen = links.get(key)
                links[key] = f if seen is None else NeighbourLink(seen.local_interface, seen.remote_device,
                                                                  seen.remote_interface, seen.protocols | f.protocols)
        for link in links.values():
            src = self.local_interface(link.local_interface)
            dst = self.remote_interface(link.remote_device, link.remote_interface)
            self.rel("CONNECTED_TO", src, dst, {"protocol": "+".join(sorted(link.protocols))})
        for f in facts:
            if isinstance(f, Software):
                ref = self.ci(f"pkg:{f.product}", "SoftwareInstall",
                              _clean(host_name=f.host_name, product=f.product, version=f.version, vendor=f.vendor))
                if self.device_ref is not None:
                    self.rel("RUNS_ON", ref, self.device_ref)
        for f in facts:
            if isinstance(f, Application):
                self.application(f)
        for f in facts:
            if isinstance(f, Endpoint):
                self.endpoint(f)
        for f in facts:
            if isinstance(f, Certificate):
                self.certificate(f)
        for f in facts:
            if isinstance(f, Dependency):
                self.dependency(f)
        for f in facts:
            if isinstance(f, Address) and not f.own:
                self.ci(f"ip:{f.address}", "IPAddress", _clean(address=f.address, mac_address=f.mac_address))
        for f in facts:
            if isinstance(f, CloudResource):
                self.cloud_resource(f)
        for f in facts:
            if isinstance(f, CloudLink):
                self.rel(f.type, self.cloud_end(f.src), self.cloud_end(f.dst), dict(f.attrs))

    def device(self, d: Device, ref: str) -> None:
        self.device_ref = ref
        self.device_name = d.device_name()
        macs = sorted({m for m in d.macs if identifying_mac(m)})
        attrs = _clean(hostname=d.hostname, fqdn=d.fqdn, management_ip=d.management_ip,
                       ip_addresses=sorted(set(d.ip_addresses), key=_address_order), mac_addresses=macs,
                       serial_number=d.serial_number, vendor=d.vendor, model=d.model, os=d.os,
                       os_version=d.os_version, description=d.description)
        attrs.update(_clean(**d.extra))
        self.ci(ref, d.cls, attrs)

    def cloud_resource(self, r: CloudResource) -> None:
        attrs = dict(r.attrs)
        if "mac_addresses" in attrs:
            attrs["mac_addresses"] = sorted({m for m in attrs["mac_addresses"] if identifying_mac(m)})
        if "mac_address" in attrs:
            attrs["mac_address"] = _unicast_mac(attrs["mac_address"])
        self.ci(f"cloud:{r.ref}", r.cls, _clean(**attrs))

    @staticmethod
    def cloud_end(end: str | Identity) -> str | IdentityRef:
        return f"cloud:{end}" if isinstance(end, str) else IdentityRef(end.cls, (end.key,))

    def address(self, a: Address) -> None:
        ref = self.ci(f"ip:{a.address}", "IPAddress", _clean(address=a.address, dns_name=a.dns_name))
        if a.on_device and self.device_ref is not None:
            self.rel("HAS_ADDRESS", self.device_ref, ref)
        if a.interface is not None:
            itf = self.local_interface(a.interface)
            self.rel("HAS_ADDRESS", itf, ref, _clean(prefix_length=a.prefix_length))
        if a.subnet is not None:
            net = self.ci(f"net:{a.subnet}", "Subnet", {"cidr": a.subnet})
            self.rel("IN_SUBNET", ref, net)

    def application(self, a: Application) -> str:
        ref = self.ci(f"app:{a.name}", a.cls, _clean(name=a.name, engine=a.engine, process=a.process, port=a.port,
                                                      description=a.description))
        if a.on_device and self.device_ref is not None:
            self.rel("RUNS_ON", ref, self.device_ref)
        return ref

    def endpoint(self, e: Endpoint) -> str:
        ref = self.ci(self.endpoint_ref(e.address, e.port), "ServiceEndpoint",
                      _clean(address=e.address, port=e.port, protocol=e.protocol, service=e.service, banner=e.banner,
                             tls=e.tls, tls_verified=e.tls_verified, process=e.process, host_name=e.host_name))
        if e.on_device and self.device_ref is not None:
            self.rel("RUNS_ON", ref, self.device_ref)
        for app in e.served_by:
            self.rel("LISTENS_ON", f"app:{app}", ref)
        return ref

    def certificate(self, c: Certificate) -> None:
        ref = self.ci(f"cert:{c.fingerprint_sha256}", "Certificate", {
            "subject": c.subject, "sans": c.sans, "issuer": c.issuer, "serial": c.serial,
            "fingerprint_sha256": c.fingerprint_sha256, "not_before": c.not_before, "not_after": c.not_after})
        if isinstance(c.used_by, tuple):
            user = self.endpoint_ref(*c.used_by)
        elif isinstance(c.used_by, str):
            user = f"app:{c.used_by}"
        elif self.device_ref is not None:
            user = self.device_ref
        else:
            return
        self.rel("USES_CERTIFICATE", user, ref, _clean(chain_position=c.chain_position, path=c.path))

    def dependency(self, d: Dependency) -> None:
        dst = self.endpoint_ref(*d.server) if isinstance(d.server, tuple) else f"app:{d.server}"
        self.rel("DEPENDS_ON", f"app:{d.client}", dst, dict(d.attrs))
