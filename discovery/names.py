"""One spelling for interface and device names, whichever protocol reported them.

Cisco prints ``Gi1/0/1`` in CDP and LLDP and ``GigabitEthernet1/0/1`` in ``show interfaces``;
Arista says ``Et1`` and ``Ethernet1``; SNMP's ifName is short and ifDescr long. An Interface is
identified by ``(device_name, if_name)``, so every discovery method must write the same spelling:

- ``if_name`` is the **long form** (``GigabitEthernet1/0/1``, ``TenGigabitEthernet1/1/1``,
  ``Ethernet1``, ``Port-channel10``), produced by ``long_interface_name``. Only capitalised
  names are expanded (vendors that abbreviate, Cisco and Arista, capitalise); lower-case names
  (Junos ``ge-0/0/0``, ``lo0``, ``ae0``; NX-OS ``mgmt0``; Linux ``eth0``) are kept as they are.
  Identity compares names case-insensitively, so NX-OS ``port-channel10`` meets ``Port-channel10``.
- ``device_name`` is the device's **short hostname**, the first DNS label of what the device
  calls itself (``sw1`` for ``sw1.lab.example``), without the ``(serial)`` suffix NX-OS adds to
  its CDP device id; produced by ``short_hostname``. An address stays an address.
"""

from __future__ import annotations

import ipaddress
import re

# Abbreviation (lower case) -> long form, as IOS, IOS-XE, NX-OS and EOS print them in full.
_LONG_FORMS: dict[str, str] = {}
for _long, _shorts in {
    "Ethernet": ("et", "eth", "ethernet"),
    "FastEthernet": ("fa", "fas", "fast", "fastethernet"),
    "GigabitEthernet": ("gi", "gig", "gige", "gigabitethernet"),
    "TwoGigabitEthernet": ("tw", "two", "twogige", "twogigabitethernet"),
    "FiveGigabitEthernet": ("fi", "fivegige", "fivegigabitethernet"),
    "TenGigabitEthernet": ("te", "ten", "tengig", "tengige", "tengigabitethernet"),
    "TwentyFiveGigE": ("twe", "twentyfivegige", "twentyfivegigabitethernet"),
    "FortyGigabitEthernet": ("fo", "for", "fortygige", "fortygigabitethernet"),
    "HundredGigE": ("hu", "hundredgige", "hundredgigabitethernet"),
    "Port-channel": ("po", "port-channel", "portchannel"),
    "Loopback": ("lo", "loopback"),
    "Vlan": ("vl", "vlan"),
    "Tunnel": ("tu", "tunnel"),
    "Serial": ("se", "serial"),
    "Null": ("nu", "null"),
    "Management": ("ma", "management"),
}.items():
    for _short in _shorts:
        _LONG_FORMS[_short] = _long

_IF_NAME = re.compile(r"^(?P<kind>[A-Za-z][A-Za-z-]*?)\s*(?P<rest>\d[\w/.:-]*)$")


def long_interface_name(name: str) -> str:
    """``Gi1/0/1`` -> ``GigabitEthernet1/0/1``; unknown prefixes and Junos names are kept."""
    name = name.strip()
    m = _IF_NAME.match(name)
    if m is None:
        return name
    if not m["kind"][0].isupper():
        return name  # Junos (ge-0/0/0, lo0, ae0) and Linux (eth0) names are lower case and kept
    long = _LONG_FORMS.get(m["kind"].lower())
    return f"{long}{m['rest']}" if long else name


def short_hostname(name: str) -> str:
    """``sw1.lab.example`` -> ``sw1``; ``n9k1(FOX1234)`` -> ``n9k1``; addresses are kept whole."""
    name = name.strip().strip('"')
    name = re.sub(r"\s*\([^)]*\)$", "", name)
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    return name.split(".", 1)[0] if name and not name.startswith(".") else name
