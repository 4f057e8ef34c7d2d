#!/usr/bin/env python3
"""Writes ``tests/data/netdev_snmp/sw1.snmprec``: the fakenos lab's ``sw1`` as an SNMP agent sees it.

The SSH lab (``tests/data/netdev/lab/sw1/*.raw``, served by fakenos) and this file describe one
Catalyst 9300: the same sysName (``sw1``), ENTITY-MIB chassis serial and model (``show inventory``),
the same interfaces (ifName in IOS's short form, ``Gi1/0/1``; ifDescr long), MACs, speeds, states,
descriptions (ifAlias) and addresses (``show interfaces``), and LLDP neighbours as ``show lldp
neighbors detail`` lists them (leaf1 by interface name, r1 by ifIndex with the name in the port
description, core9 by short name), core9 also in the CDP cache. So SNMP and SSH discovery of the
one address must make one CI (tests/integration/netdev/test_netdev_snmp_merge.py).

Only what SNMP discovery reads is kept (the system scalars and the columns of ``oids.TABLES``), to
keep the file small. Run::

    python scripts/netdev_snmprec.py tests/data/netdev_snmp
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from snmp_agents import Address, DeviceSpec, Neighbour, Port, device_varbinds  # scripts/ is sys.path[0]

from discovery.snmp import snmprec
from discovery.snmp.ber import TAG_OCTET_STRING, Varbind
from discovery.snmp.oids import ENT_PHYS_MODEL_NAME, SYSTEM_SCALARS, TABLES

SYS_DESCR = ("Cisco IOS Software [Bengaluru], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.6.4, RELEASE "
             "SOFTWARE (fc1)\r\nTechnical Support: http://www.cisco.com/techsupport\r\nCopyright (c) 1986-2022 by "
             "Cisco Systems, Inc.\r\nCompiled Sun 14-Aug-22 09:06 by mcpre")
HEADER = ("# sw1 of tests/data/netdev/lab as SNMP discovery reads it; written by scripts/netdev_snmprec.py\n"
          "# (edit that script and rerun it rather than this file)\n")
PSU_MODEL = "PWR-C1-350WAC-P"  # show inventory's power supply (device_varbinds names another)


def sw1() -> DeviceSpec:
    """sw1 of tests/data/netdev/lab, port for port."""
    ports = [
        Port(1, "Gi0/0", "GigabitEthernet0/0", 6, "70:d3:79:be:6a:80", 1000, alias="oob", lldp_port=1),
        *[Port(8 + n, f"Gi1/0/{n}", f"GigabitEthernet1/0/{n}", 6, f"70:d3:79:be:6a:8{n}", 1000, alias=alias,
               admin=1 if alias else 2, oper=1 if alias else 2, lldp_port=8 + n)
          for n, alias in enumerate(("to leaf1 Et1", "to r1 ge-0/0/0", "to core9", ""), 1)],
        Port(40, "Lo0", "Loopback0", 24, None, 8000),
        Port(50, "Vl10", "Vlan10", 53, "70:d3:79:be:6a:47", 1000, alias="users"),
    ]
    return DeviceSpec(
        "sw1", "1.3.6.1.4.1.9.1.2494", SYS_DESCR, ports,
        addresses=[Address("10.99.0.1", 24, "Gi0/0"), Address("10.0.13.1", 30, "Gi1/0/2"),
                   Address("10.255.0.1", 32, "Lo0"), Address("10.10.0.1", 24, "Vl10")],
        lldp=[Neighbour("Gi1/0/1", "leaf1.lab.example", "Ethernet1", 5, "to sw1 Gi1/0/1", "2c:dd:e9:11:22:33"),
              Neighbour("Gi1/0/2", "r1", "514", 7, "ge-0/0/0", "3c:8c:93:aa:0b:00"),
              Neighbour("Gi1/0/3", "core9.lab.example", "Te1/0/1", 5, "to sw1", "00:a3:d1:f4:5e:00")],
        cdp=[Neighbour("Gi1/0/3", "core9.lab.example", "TenGigabitEthernet1/0/1", port_desc="cisco C9500-24Y4C")],
        chassis={"serial": "FOC2231X0AB", "model": "C9300-24T", "mfg": "Cisco Systems Inc.",
                 "descr": "C9300-24T", "psu_serial": "DCB2229G1XY", "software": "17.6.4"},
        location="Lab",
    )


def read_by_discovery(varbinds: Sequence[Varbind]) -> list[Varbind]:
    """The var-binds SNMP discovery asks for: the system scalars and the columns of its tables."""
    columns = [c for table in TABLES for c in table.columns]
    out = []
    for name, tag, value in varbinds:
        if name in SYSTEM_SCALARS or any(name[:len(c)] == c for c in columns):
            if name == (*ENT_PHYS_MODEL_NAME, 2):
                value = PSU_MODEL.encode()
                tag = TAG_OCTET_STRING
            out.append((name, tag, value))
    return out


def sw1_varbinds() -> list[Varbind]:
    return read_by_discovery(device_varbinds(sw1()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    path = args.directory / "sw1.snmprec"
    path.write_text(HEADER + snmprec.dumps(sw1_varbinds()))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
