"""Interface names: ours beside netutils' ``canonical_interface_name`` (issue 20.9).

We keep ``discovery.names.long_interface_name``: on the recorded data (``bench/interface_names.py``, 94
distinct names) netutils spells 88 alike and 6 differently, each a name a device prints itself and other
methods report the same way: ``Vlan1`` (netutils ``VLAN1``), Linux ``eth0`` and ``lo`` (netutils
``Ethernet0``, ``Loopback``), Junos ``lo0`` and NX-OS ``mgmt0`` (``Loopback0``, ``Management0``). IOS-XE
``Hu1/0/49`` is ``HundredGigE1/0/49`` on the device (netutils ``HundredGigabitEthernet``) and ``Fi1/0/1``
``FiveGigabitEthernet`` (netutils ``FiftyGigabitEthernet``). This test pins both halves: where we agree
with netutils and where we deliberately do not.
"""

from __future__ import annotations

import pytest

from discovery.names import long_interface_name

netutils_interface = pytest.importorskip("netutils.interface")

AGREE = ["Gi1/0/1", "GigabitEthernet1/0/1", "Te1/1/1", "Et1", "Ethernet1", "Po10", "Port-channel10", "Lo0",
         "Fa0/1", "Tu100", "Se0/0/0", "Eth1/1"]
OURS = {  # recorded or device spelling -> what the device prints in full (and we write)
    "Vl1": "Vlan1", "Vl10": "Vlan10", "eth0": "eth0", "lo": "lo", "lo0": "lo0", "mgmt0": "mgmt0",
    "ge-0/0/0": "ge-0/0/0", "Hu1/0/49": "HundredGigE1/0/49", "Fi1/0/1": "FiveGigabitEthernet1/0/1",
}


@pytest.mark.parametrize("name", AGREE)
def test_same_as_netutils(name: str) -> None:
    assert long_interface_name(name) == netutils_interface.canonical_interface_name(name)


@pytest.mark.parametrize(("name", "long"), sorted(OURS.items()))
def test_where_we_keep_the_device_spelling(name: str, long: str) -> None:
    assert long_interface_name(name) == long
    assert netutils_interface.canonical_interface_name(name) != long or name == "ge-0/0/0"
