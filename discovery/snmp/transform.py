"""Pure: what one agent answered (``RawDevice``) -> observations (``transform``) -> a ``Batch``.

The device becomes one CI (class from ``vendors.identify``) with ``management_ip`` = the polled
address, ``hostname`` = sysName and ``snmp_profile`` = the profile that worked, so a scan of the
same address, or an SSH login to it, meets it through the address. Around it:

- every interface (ifTable + ifXTable) an ``Interface`` (device_name = short sysName, if_name = the
  long form of ifName or ifDescr: the spelling every collector uses, ``discovery.names``), linked
  by HAS_INTERFACE;
- every own unicast address (ipAddrTable, ipAddressTable) an ``IPAddress`` with HAS_ADDRESS from
  the device and from its interface, IN_SUBNET its ``Subnet`` (from the mask or prefix length;
  none for /32 and /128); the addresses also fill the device's ``ip_addresses``;
- every LLDP neighbour (and CDP neighbour on ports LLDP is silent about) a CONNECTED_TO from the
  local interface to a stub ``Interface`` named like the remote box names its own port
  (device_name = short remote sysName), which identity merges with the remote box's own run;
- ARP / neighbour-cache entries ``IPAddress`` CIs with the MAC seen: addresses that answer on this
  segment.

Loopback, link-local, multicast and unspecified addresses never become CIs or identity keys
(every box has 127.0.0.1), nor do virtual MACs (VRRP, HSRP) or MACs of logical interfaces, which
neighbouring boxes may share (an MLAG virtual-router MAC would merge two switches).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cmdb.batch import Batch
from discovery.names import long_interface_name, short_hostname
from discovery.observations import Address, Device, Fact, Interface, NeighbourLink, to_batch
from discovery.snmp import oids as O
from discovery.snmp.ber import Value, Varbind
from discovery.snmp.oids import Oid, dotted
from discovery.snmp.vendors import identify
from discovery.targets import scope_of

log = logging.getLogger("cmdb.discovery.snmp")

SOURCE = "snmp"
NETWORK_DEVICE_CLASSES = frozenset({"NetworkDevice", "Router", "Switch", "Firewall", "LoadBalancer"})
ADMIN_STATUS = {1: "up", 2: "down", 3: "testing"}
OPER_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}
# ifType values of physical ports, whose MACs identify the box (IANAifType-MIB)
PHYSICAL_IF_TYPES = frozenset({6, 7, 62, 69, 71, 117})
JUNK_SERIALS = frozenset({"", "0", "n/a", "na", "none", "unknown", "not specified", "to be filled by o.e.m.",
                          "default string", "system serial number", "0123456789", "123456789"})

_COLUMNS = frozenset(c for table in O.TABLES for c in table.columns)
_COLUMN_LENGTHS = tuple(sorted({len(c) for c in _COLUMNS}))
_SCALARS = frozenset(O.SYSTEM_SCALARS)


@dataclass
class RawDevice:
    """What one agent answered: every var-bind read, and the table walks that failed (name -> why)."""

    target: str
    address: str
    profile: str
    varbinds: list[Varbind]
    failed: dict[str, str] = field(default_factory=dict)


class MibView:
    """The var-binds of one agent, indexed for reading: scalars by OID, table columns by row index."""

    def __init__(self, varbinds: Iterable[Varbind]) -> None:
        self.scalars: dict[Oid, Value] = {}
        self.columns: dict[Oid, dict[Oid, Value]] = {}
        for name, _tag, value in varbinds:
            if name in _SCALARS:
                self.scalars[name] = value
                continue
            for length in _COLUMN_LENGTHS:
                col = name[:length]
                if col in _COLUMNS:
                    self.columns.setdefault(col, {})[name[length:]] = value
                    break

    def column(self, col: Oid) -> dict[Oid, Value]:
        return self.columns.get(col, {})

    def text(self, scalar: Oid) -> str:
        return text(self.scalars.get(scalar))


def text(value: Value) -> str:
    """An OCTET STRING as text (UTF-8, else Latin-1) without trailing NULs or blanks."""
    if isinstance(value, bytes):
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            decoded = value.decode("latin-1")
        return decoded.replace("\x00", "").strip()
    if value is None:
        return ""
    if isinstance(value, tuple):
        return dotted(value)
    return str(value)


def integer(value: Value) -> int | None:
    return value if isinstance(value, int) else None


def mac(value: Value) -> str | None:
    """A 6-byte physical address as aa:bb:cc:dd:ee:ff; None for anything else or all zeros."""
    if isinstance(value, bytes) and len(value) == 6 and any(value):
        return ":".join(f"{b:02x}" for b in value)
    return None


def routable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address that names one box: not loopback, link-local, multicast, unspecified or broadcast."""
    return not (address.is_loopback or address.is_link_local or address.is_multicast or address.is_unspecified
                or (address.version == 4 and int(address) == 0xFFFFFFFF))


def inet_address(index: Oid, pos: int) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, int]:
    """An InetAddressType + InetAddress pair inside a row index at ``pos``: (address or None, next pos)."""
    if pos + 1 >= len(index):
        return None, len(index)
    kind, length = index[pos], index[pos + 1]
    raw = index[pos + 2:pos + 2 + length]
    end = pos + 2 + length
    try:
        if kind == 1 and length == 4:
            return ipaddress.IPv4Address(bytes(raw)), end
        if kind == 2 and length == 16:
            return ipaddress.IPv6Address(bytes(raw)), end
    except ValueError:
        pass
    return None, end  # ipv4z / ipv6z (zoned: link-scoped) or malformed


def ipv4_index(index: Oid) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.IPv4Address(bytes(index[-4:])) if len(index) >= 4 else None
    except ValueError:
        return None


@dataclass
class _Interface:
    if_index: int
    ref: str
    name: str  # the Interface's if_name: ifName, else ifDescr
    descr: str  # ifDescr
    ifname: str  # ifName
    alias: str
    mac: str | None
    if_type: int | None


@dataclass
class _Chassis:
    serial: str | None = None
    model: str | None = None
    maker: str | None = None
    software: str | None = None


def _chassis(view: MibView) -> _Chassis:
    """Serial, model, manufacturer and software revision of the chassis in ENTITY-MIB; the outermost wins."""
    classes = view.column(O.ENT_PHYS_CLASS)
    contained = view.column(O.ENT_PHYS_CONTAINED_IN)
    serials = view.column(O.ENT_PHYS_SERIAL)
    models = view.column(O.ENT_PHYS_MODEL_NAME)
    makers = view.column(O.ENT_PHYS_MFG_NAME)
    chassis = [i for i, c in sorted(classes.items()) if c == O.ENT_CLASS_CHASSIS]
    chassis.sort(key=lambda i: (integer(contained.get(i)) not in (0, None), i))
    for i in chassis:
        serial = text(serials.get(i))
        if serial.lower() in JUNK_SERIALS or len(serial) < 3:
            serial = ""
        model = text(models.get(i))
        if serial or model:
            return _Chassis(serial or None, model or None, text(makers.get(i)) or None,
                            text(view.column(O.ENT_PHYS_SOFTWARE_REV).get(i)) or None)
    return _Chassis()


def _interfaces(view: MibView) -> dict[int, _Interface]:
    descrs, names = view.column(O.IF_DESCR), view.column(O.IF_NAME)
    indexes = sorted({i[0] for i in (*descrs, *names) if len(i) == 1})
    out: dict[int, _Interface] = {}
    used: set[str] = set()
    for n in indexes:
        descr = text(descrs.get((n,)))
        ifname = text(names.get((n,)))
        name = long_interface_name(ifname or descr) or f"ifIndex {n}"  # one spelling for all (discovery.names)
        if name in used:  # two interfaces with one name would be merged by identity: keep them apart
            name = f"{name} (ifIndex {n})"
        used.add(name)
        out[n] = _Interface(n, f"if:{n}", name, descr, ifname, text(view.column(O.IF_ALIAS).get((n,))),
                            mac(view.column(O.IF_PHYS_ADDRESS).get((n,))), integer(view.column(O.IF_TYPE).get((n,))))
    return out


def _interface_fact(view: MibView, itf: _Interface) -> Interface:
    n = (itf.if_index,)
    high = integer(view.column(O.IF_HIGH_SPEED).get(n))
    speed = integer(view.column(O.IF_SPEED).get(n))
    return Interface(
        itf.name, alias=itf.alias or None, description=itf.descr or None, mac_address=itf.mac,
        speed_mbps=high or (speed // 1_000_000 if speed else None),
        admin_status=ADMIN_STATUS.get(integer(view.column(O.IF_ADMIN_STATUS).get(n)) or 0),
        oper_status=OPER_STATUS.get(integer(view.column(O.IF_OPER_STATUS).get(n)) or 0))


@dataclass
class _Address:
    if_index: int | None
    subnet: str | None  # the CIDR of its subnet; None for a host route (/32, /128) or when unknown


def _subnet(address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: str | int | None) -> str | None:
    if prefix is None:
        return None
    try:
        net = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    except ValueError:
        return None
    return str(net) if net.num_addresses > 1 else None


def _own_addresses(view: MibView) -> dict[str, _Address]:
    """Own unicast addresses -> ifIndex and subnet, from both IP-MIB tables."""
    out: dict[str, _Address] = {}
    masks = view.column(O.IP_AD_ENT_NETMASK)
    for index, if_index in view.column(O.IP_AD_ENT_IF_INDEX).items():
        addr = ipv4_index(index)
        if addr is not None and routable(addr):
            mask = masks.get(index)
            netmask = str(ipaddress.IPv4Address(mask)) if isinstance(mask, bytes) and len(mask) == 4 else None
            out[str(addr)] = _Address(integer(if_index), _subnet(addr, netmask))
    types, prefixes = view.column(O.IP_ADDRESS_TYPE), view.column(O.IP_ADDRESS_PREFIX)
    for index, if_index in view.column(O.IP_ADDRESS_IF_INDEX).items():
        addr, _ = inet_address(index, 0)
        if addr is None or not routable(addr) or integer(types.get(index)) == 3:  # 3: broadcast
            continue
        pointer = prefixes.get(index)  # a RowPointer into ipAddressPrefixTable: its index ends with the length
        length = pointer[-1] if isinstance(pointer, tuple) and len(pointer) > 1 and pointer != (0, 0) else None
        known = out.get(str(addr))
        if known is None:
            out[str(addr)] = _Address(integer(if_index), _subnet(addr, length))
        elif known.subnet is None:
            known.subnet = _subnet(addr, length)
    return out


def _neighbour_addresses(view: MibView) -> dict[str, str]:
    """Other boxes' addresses -> MAC from the ARP / IPv6 neighbour caches (invalid entries left out)."""
    found: dict[str, str] = {}
    media_types = view.column(O.IP_NET_TO_MEDIA_TYPE)
    for index, phys in view.column(O.IP_NET_TO_MEDIA_PHYS).items():
        addr = ipv4_index(index)
        hw = mac(phys)
        if addr is not None and integer(media_types.get(index)) != 2 and hw and routable(addr):
            found[str(addr)] = hw
    phys_types = view.column(O.IP_NET_TO_PHYS_TYPE)
    for index, phys in view.column(O.IP_NET_TO_PHYS_PHYS).items():
        addr, _ = inet_address(index, 1)  # index: ifIndex, type, length, address
        hw = mac(phys)
        if addr is not None and integer(phys_types.get(index)) not in (2, 5) and hw and routable(addr):
            found[str(addr)] = hw
    return found


def _port_text(subtype: int | None, value: Value) -> str:
    """A port or chassis id as text; six raw bytes (a MAC address) as aa:bb:..."""
    raw_mac = isinstance(value, bytes) and len(value) == 6 and not text(value).isprintable()
    if subtype == O.PORT_ID_MAC_ADDRESS or raw_mac:
        return mac(value) or text(value)
    return text(value)


def _local_ports(view: MibView, interfaces: dict[int, _Interface]) -> dict[int, _Interface]:
    """lldpLocPortNum -> local interface, by port id, then description, then the number as ifIndex."""
    by_name: dict[str, _Interface] = {}
    for itf in interfaces.values():  # names first: an alias is free text and may repeat another port's name
        for key in (itf.name, itf.ifname, itf.descr):
            if key:
                by_name.setdefault(key, itf)
    for itf in interfaces.values():
        if itf.alias:
            by_name.setdefault(itf.alias, itf)
    by_mac: dict[str, _Interface] = {}
    for itf in interfaces.values():
        if itf.mac:
            by_mac.setdefault(itf.mac, itf)
    subtypes, ids, descs = (view.column(O.LLDP_LOC_PORT_ID_SUBTYPE), view.column(O.LLDP_LOC_PORT_ID),
                            view.column(O.LLDP_LOC_PORT_DESC))
    out: dict[int, _Interface] = {}
    for index in {*subtypes, *ids, *descs}:
        if len(index) != 1:
            continue
        port_num = index[0]
        subtype = integer(subtypes.get(index))
        port_id = _port_text(subtype, ids.get(index))
        found = by_mac.get(port_id) if subtype == O.PORT_ID_MAC_ADDRESS else by_name.get(port_id)
        if found is None:
            found = by_name.get(text(descs.get(index)))
        if found is None and subtype == O.PORT_ID_LOCAL and port_id.isdigit():
            found = interfaces.get(int(port_id))
        if found is None:
            found = interfaces.get(port_num)
        if found is not None:
            out[port_num] = found
    return out


def _remote_port(subtype: int | None, port_id: Value, port_desc: Value) -> str:
    """How the remote box names the port: its ifName for subtype interfaceName, else the description."""
    ident = _port_text(subtype, port_id)
    desc = text(port_desc)
    if subtype == O.PORT_ID_INTERFACE_NAME and ident:
        return ident
    return desc or ident


def _lldp_links(view: MibView, interfaces: dict[int, _Interface]) -> list[tuple[_Interface, str, str]]:
    """(local interface, remote sysName, remote port name) per LLDP neighbour."""
    local = _local_ports(view, interfaces)
    names = view.column(O.LLDP_REM_SYS_NAME)
    subtypes, ids, descs = (view.column(O.LLDP_REM_PORT_ID_SUBTYPE), view.column(O.LLDP_REM_PORT_ID),
                            view.column(O.LLDP_REM_PORT_DESC))
    out: list[tuple[_Interface, str, str]] = []
    for index in sorted({*names, *ids}):
        if len(index) != 3:
            continue
        itf = local.get(index[1]) or (interfaces.get(index[1]) if not local else None)
        remote_name = short_hostname(text(names.get(index)))
        remote_port = long_interface_name(_remote_port(integer(subtypes.get(index)), ids.get(index),
                                                       descs.get(index)))
        if itf is None or not remote_name or not remote_port:
            log.debug("snmp: LLDP neighbour %s on local port %s left out: local port unknown or remote unnamed",
                      remote_name or "?", index[1])
            continue
        out.append((itf, remote_name, remote_port))
    return out


def _cdp_links(view: MibView, interfaces: dict[int, _Interface]) -> list[tuple[_Interface, str, str]]:
    devices, ports = view.column(O.CDP_CACHE_DEVICE_ID), view.column(O.CDP_CACHE_DEVICE_PORT)
    out: list[tuple[_Interface, str, str]] = []
    for index in sorted(devices):
        if len(index) != 2 or index[0] not in interfaces:
            continue
        remote_name = short_hostname(text(devices[index]))  # also drops NX-OS's "(SERIAL)"
        port = long_interface_name(text(ports.get(index)))
        if remote_name and port:
            out.append((interfaces[index[0]], remote_name, port))
    return out


def _address_order(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    return addr.version, int(addr)


def transform(raw: RawDevice) -> list[Fact]:
    """What one agent said, as observations (pure)."""
    view = MibView(raw.varbinds)
    sys_name = view.text(O.SYS_NAME)
    sys_descr = view.text(O.SYS_DESCR)
    object_id = view.scalars.get(O.SYS_OBJECT_ID)
    sys_object_id = object_id if isinstance(object_id, tuple) else None
    platform = identify(sys_object_id, sys_descr)
    chassis = _chassis(view)
    interfaces = _interfaces(view)
    own = _own_addresses(view)
    extra: dict[str, Any] = {"snmp_profile": raw.profile}
    if platform.cls in NETWORK_DEVICE_CLASSES and sys_object_id:
        extra["sys_object_id"] = dotted(sys_object_id)
    facts: list[Fact] = [Device(
        platform.cls, hostname=sys_name or None, management_ip=raw.address, ip_addresses=[*own, raw.address],
        # physical ports' MACs only: logical interfaces (SVIs, port-channels) may share theirs with a peer
        macs=[i.mac for i in interfaces.values() if i.mac and i.if_type in PHYSICAL_IF_TYPES],
        serial_number=chassis.serial, vendor=platform.vendor or chassis.maker, model=chassis.model or platform.model,
        os=platform.os, os_version=platform.os_version or (chassis.software if platform.os else None),
        description=sys_descr or None, extra=extra,
    )]
    facts += [_interface_fact(view, itf) for itf in interfaces.values()]
    for address, info in sorted(own.items()):
        on = interfaces[info.if_index].name if info.if_index is not None and info.if_index in interfaces else None
        facts.append(Address(address, interface=on, subnet=info.subnet, on_device=True))

    # One link per (local port, remote box, remote port), with every protocol that reported it.
    lldp_ports: set[int] = set()
    for itf, remote_name, remote_port in _lldp_links(view, interfaces):
        facts.append(NeighbourLink(itf.name, remote_name, remote_port, frozenset({"lldp"})))
        lldp_ports.add(itf.if_index)
    lldp_links = {(f.local_interface, f.remote_device.lower(), f.remote_interface.lower())
                  for f in facts if isinstance(f, NeighbourLink)}
    for itf, remote_name, remote_port in _cdp_links(view, interfaces):
        # CDP only where LLDP is silent about the port, or where it reports the same link
        if itf.if_index not in lldp_ports or (itf.name, remote_name.lower(), remote_port.lower()) in lldp_links:
            facts.append(NeighbourLink(itf.name, remote_name, remote_port, frozenset({"cdp"})))

    for address, hw in sorted(_neighbour_addresses(view).items()):
        if address not in own and address != raw.address:
            facts.append(Address(address, mac_address=hw, own=False))
    return facts


def to_snmp_batch(raw: RawDevice) -> Batch:
    """The batch for one agent; ``complete`` only when every table walk succeeded."""
    return to_batch(SOURCE, scope_of(raw.target), not raw.failed, transform(raw))
