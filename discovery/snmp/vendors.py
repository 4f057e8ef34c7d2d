"""What the system group says about a box: vendor, model, CI class, OS and version.

``sysObjectID`` starts with the vendor's IANA enterprise number (1.3.6.1.4.1.<n>); a few
product subtrees are known exactly (``PRODUCTS``). Vendors that make one kind of box (firewall,
printer, load balancer) give the class by themselves; for vendors with many product lines the
``sysDescr`` wording decides ("Ethernet Switch", "Catalyst", "internet router", "Adaptive Security
Appliance" ...). What is left is a plain ``NetworkDevice``. The ENTITY-MIB chassis model, when
the agent has one, is better than anything here and overrides ``model`` (see ``transform.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from discovery.snmp.oids import Oid

ENTERPRISES: Oid = (1, 3, 6, 1, 4, 1)


@dataclass(frozen=True)
class Platform:
    cls: str = "NetworkDevice"
    vendor: str | None = None
    model: str | None = None
    os: str | None = None
    os_version: str | None = None


@dataclass(frozen=True)
class Vendor:
    name: str
    cls: str | None = None  # the class of everything this vendor sells over SNMP, when there is one


VENDORS: dict[int, Vendor] = {
    2: Vendor("IBM"), 9: Vendor("Cisco"), 11: Vendor("HP"), 42: Vendor("Oracle"), 43: Vendor("3Com", "Switch"),
    171: Vendor("D-Link", "Switch"), 207: Vendor("Allied Telesis", "Switch"), 253: Vendor("Xerox", "Printer"),
    311: Vendor("Microsoft", "Server"), 367: Vendor("Ricoh", "Printer"), 641: Vendor("Lexmark", "Printer"),
    674: Vendor("Dell"), 1248: Vendor("Epson", "Printer"), 1347: Vendor("Kyocera", "Printer"),
    1588: Vendor("Brocade", "Switch"), 1602: Vendor("Canon", "Printer"), 1916: Vendor("Extreme Networks", "Switch"),
    1991: Vendor("Brocade", "Switch"), 2011: Vendor("Huawei"), 2021: Vendor("UCD-SNMP", "Server"),
    2385: Vendor("Sharp", "Printer"), 2435: Vendor("Brother", "Printer"), 2620: Vendor("Check Point", "Firewall"),
    2636: Vendor("Juniper Networks"), 3224: Vendor("Juniper Networks", "Firewall"),
    3375: Vendor("F5", "LoadBalancer"), 4526: Vendor("Netgear", "Switch"), 5951: Vendor("Citrix", "LoadBalancer"),
    6027: Vendor("Dell", "Switch"), 6876: Vendor("VMware", "Server"), 8072: Vendor("Net-SNMP", "Server"),
    8741: Vendor("SonicWall", "Firewall"), 12356: Vendor("Fortinet", "Firewall"), 14988: Vendor("MikroTik", "Router"),
    18334: Vendor("Konica Minolta", "Printer"), 25461: Vendor("Palo Alto Networks", "Firewall"),
    25506: Vendor("H3C", "Switch"), 30065: Vendor("Arista Networks", "Switch"), 41112: Vendor("Ubiquiti"),
    47196: Vendor("HPE Aruba", "Switch"),
}

# Product subtrees known exactly: (prefix, class, model or None)
PRODUCTS: tuple[tuple[Oid, str, str | None], ...] = (
    ((1, 3, 6, 1, 4, 1, 8072, 3, 2, 10), "Server", None),  # net-snmp on Linux
    ((1, 3, 6, 1, 4, 1, 311, 1, 1, 3, 1, 1), "Host", None),  # Windows workstation
    ((1, 3, 6, 1, 4, 1, 311, 1, 1, 3, 1, 2), "Server", None),  # Windows server
    ((1, 3, 6, 1, 4, 1, 311, 1, 1, 3, 1, 3), "Server", None),  # Windows domain controller
    ((1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 1), "Printer", None),  # HP JetDirect
    ((1, 3, 6, 1, 4, 1, 11, 2, 3, 7, 11), "Switch", None),  # HP ProCurve / Aruba OS switches
    ((1, 3, 6, 1, 4, 1, 674, 10895), "Switch", None),  # Dell PowerConnect / Networking
    ((1, 3, 6, 1, 4, 1, 2011, 2, 23), "Switch", None),  # Huawei S-series
    ((1, 3, 6, 1, 4, 1, 9, 1, 516), "Switch", "Catalyst 3750 stack"),
    ((1, 3, 6, 1, 4, 1, 9, 1, 1208), "Switch", "Catalyst 2960 stack"),
)

# sysDescr wording -> class, for vendors with many product lines; first match wins
DESCR_CLASSES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.I), c) for p, c in (
    (r"adaptive security appliance|firepower|\bsrx\d|fortigate|pan-os|\bfirewall\b", "Firewall"),
    (r"jetdirect|\bprinter\b|laserjet|officejet", "Printer"),
    (r"big-ip|netscaler|load.?balanc", "LoadBalancer"),
    (r"catalyst|\bnx-os\b|nexus|ethernet switch|\bswitch\b|\bex\d{4}|\bqfx\d|cat9k|c2960|c3750|c3850|"
     r"arista networks eos|procurve|aruba", "Switch"),
    (r"\bios[ -]?xr\b|\brouter\b|\bisr\d*\b|\basr\d|\bmx\d+|routeros|c1900|c2900|c3900|c800|c1100", "Router"),
    (r"^linux\b|\bwindows\b|freebsd|sunos|vmware esxi|hardware:.*software:", "Server"),
))

# sysDescr -> (os, version): first match wins
OS_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.I | re.S), os) for p, os in (
    (r"Cisco NX-OS.*?Version\s+([\w.()\-]+)", "NX-OS"),
    (r"Cisco IOS[ -]XR.*?Version\s+([\w.()\-]+)", "IOS-XR"),
    (r"Cisco IOS[ -]XE.*?Version\s+([\w.()\-]+)", "IOS-XE"),
    (r"Cisco IOS Software.*?IOS-?XE.*?Version\s+([\w.()\-]+)", "IOS-XE"),  # 16.x/17.x: (CAT9K_IOSXE)
    (r"Cisco IOS.*?Version\s+([\w.()\-]+)", "IOS"),
    (r"Cisco Adaptive Security Appliance Version\s+([\w.()\-]+)", "ASA"),
    (r"Arista Networks EOS version\s+([\w.\-]+)", "EOS"),
    (r"JUNOS\s+([\w.\-]+)", "Junos"),
    (r"RouterOS\s+([\w.\-]+)", "RouterOS"),
    (r"^Linux\s+\S+\s+(\S+)", "Linux"),
    (r"Software: Windows.*?Version\s+([\d.]+)", "Windows"),
    (r"^FreeBSD\s+\S+\s+(\S+)", "FreeBSD"),
))

# sysDescr -> model, for vendors that name it there
MODEL_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.I) for p in (
    r"running on an Arista Networks\s+(\S+)",
    r"Juniper Networks, Inc\.\s+(\S+)",
))


def enterprise_of(sys_object_id: Oid | None) -> int | None:
    if sys_object_id and len(sys_object_id) > 6 and sys_object_id[:6] == ENTERPRISES:
        return sys_object_id[6]
    return None


def identify(sys_object_id: Oid | None, sys_descr: str) -> Platform:
    """The platform of a box from its sysObjectID and sysDescr (both may be missing)."""
    enterprise = enterprise_of(sys_object_id)
    vendor = VENDORS.get(enterprise) if enterprise is not None else None
    cls: str | None = None
    model: str | None = None
    if sys_object_id:
        for prefix, pcls, pmodel in PRODUCTS:
            if sys_object_id[:len(prefix)] == prefix:
                cls, model = pcls, pmodel
                break
    if cls is None and vendor is not None and vendor.cls is not None:
        cls = vendor.cls
    if cls is None:
        cls = next((c for pattern, c in DESCR_CLASSES if pattern.search(sys_descr)), None)
    os_name = os_version = None
    for pattern, name in OS_PATTERNS:
        match = pattern.search(sys_descr)
        if match:
            os_name, os_version = name, match.group(1).rstrip(",")
            break
    if model is None:
        model = next((m.group(1).rstrip(",") for p in MODEL_PATTERNS if (m := p.search(sys_descr))), None)
    vendor_name = vendor.name if vendor is not None and vendor.name not in ("Net-SNMP", "UCD-SNMP") else None
    return Platform(cls or "NetworkDevice", vendor_name, model, os_name, os_version)
