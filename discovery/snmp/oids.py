"""Numeric OIDs of the MIB objects SNMP discovery reads (no MIB files are loaded at run time).

Each table is read as a set of columns (``TABLES``): one GETBULK fetches the next rows of every
column at once, so a table costs about ``rows / max_repetitions`` requests whatever its width.
"""

from __future__ import annotations

from dataclasses import dataclass

Oid = tuple[int, ...]


def oid(text: str) -> Oid:
    """``"1.3.6.1"`` -> ``(1, 3, 6, 1)``; a leading dot is allowed."""
    return tuple(int(part) for part in text.strip().lstrip(".").split("."))


def dotted(value: Oid) -> str:
    return ".".join(map(str, value))


# SNMPv2-MIB system group (scalars, read with one GET)
SYS_DESCR = oid("1.3.6.1.2.1.1.1.0")
SYS_OBJECT_ID = oid("1.3.6.1.2.1.1.2.0")
SYS_NAME = oid("1.3.6.1.2.1.1.5.0")
SYSTEM_SCALARS: tuple[Oid, ...] = (SYS_DESCR, SYS_OBJECT_ID, SYS_NAME)

# IF-MIB ifTable / ifXTable (index: ifIndex)
IF_DESCR = oid("1.3.6.1.2.1.2.2.1.2")
IF_TYPE = oid("1.3.6.1.2.1.2.2.1.3")
IF_SPEED = oid("1.3.6.1.2.1.2.2.1.5")
IF_PHYS_ADDRESS = oid("1.3.6.1.2.1.2.2.1.6")
IF_ADMIN_STATUS = oid("1.3.6.1.2.1.2.2.1.7")
IF_OPER_STATUS = oid("1.3.6.1.2.1.2.2.1.8")
IF_NAME = oid("1.3.6.1.2.1.31.1.1.1.1")
IF_HIGH_SPEED = oid("1.3.6.1.2.1.31.1.1.1.15")
IF_ALIAS = oid("1.3.6.1.2.1.31.1.1.1.18")

# IP-MIB: ipAddrTable (index: IPv4 address), ipAddressTable (index: type.len.address bytes)
IP_AD_ENT_IF_INDEX = oid("1.3.6.1.2.1.4.20.1.2")
IP_AD_ENT_NETMASK = oid("1.3.6.1.2.1.4.20.1.3")
IP_ADDRESS_IF_INDEX = oid("1.3.6.1.2.1.4.34.1.3")
IP_ADDRESS_TYPE = oid("1.3.6.1.2.1.4.34.1.4")
IP_ADDRESS_PREFIX = oid("1.3.6.1.2.1.4.34.1.5")  # a pointer into ipAddressPrefixTable; its last arc: the length

# ARP / neighbour caches: ipNetToMediaTable (ifIndex.a.b.c.d), ipNetToPhysicalTable (ifIndex.type.len.addr)
IP_NET_TO_MEDIA_PHYS = oid("1.3.6.1.2.1.4.22.1.2")
IP_NET_TO_MEDIA_TYPE = oid("1.3.6.1.2.1.4.22.1.4")
IP_NET_TO_PHYS_PHYS = oid("1.3.6.1.2.1.4.35.1.4")
IP_NET_TO_PHYS_TYPE = oid("1.3.6.1.2.1.4.35.1.6")

# ENTITY-MIB entPhysicalTable (index: entPhysicalIndex)
ENT_PHYS_CONTAINED_IN = oid("1.3.6.1.2.1.47.1.1.1.1.4")
ENT_PHYS_CLASS = oid("1.3.6.1.2.1.47.1.1.1.1.5")
ENT_PHYS_SOFTWARE_REV = oid("1.3.6.1.2.1.47.1.1.1.1.10")
ENT_PHYS_SERIAL = oid("1.3.6.1.2.1.47.1.1.1.1.11")
ENT_PHYS_MFG_NAME = oid("1.3.6.1.2.1.47.1.1.1.1.12")
ENT_PHYS_MODEL_NAME = oid("1.3.6.1.2.1.47.1.1.1.1.13")
ENT_CLASS_CHASSIS = 3

# LLDP-MIB (IEEE 802.1AB-2005): lldpLocPortTable (index: lldpLocPortNum),
# lldpRemTable (index: timeMark.localPortNum.remIndex)
LLDP_LOC_PORT_ID_SUBTYPE = oid("1.0.8802.1.1.2.1.3.7.1.2")
LLDP_LOC_PORT_ID = oid("1.0.8802.1.1.2.1.3.7.1.3")
LLDP_LOC_PORT_DESC = oid("1.0.8802.1.1.2.1.3.7.1.4")
LLDP_REM_CHASSIS_ID_SUBTYPE = oid("1.0.8802.1.1.2.1.4.1.1.4")
LLDP_REM_CHASSIS_ID = oid("1.0.8802.1.1.2.1.4.1.1.5")
LLDP_REM_PORT_ID_SUBTYPE = oid("1.0.8802.1.1.2.1.4.1.1.6")
LLDP_REM_PORT_ID = oid("1.0.8802.1.1.2.1.4.1.1.7")
LLDP_REM_PORT_DESC = oid("1.0.8802.1.1.2.1.4.1.1.8")
LLDP_REM_SYS_NAME = oid("1.0.8802.1.1.2.1.4.1.1.9")
# LldpPortIdSubtype values
PORT_ID_MAC_ADDRESS = 3
PORT_ID_INTERFACE_NAME = 5
PORT_ID_LOCAL = 7

# CISCO-CDP-MIB cdpCacheTable (index: ifIndex.deviceIndex)
CDP_CACHE_DEVICE_ID = oid("1.3.6.1.4.1.9.9.23.1.2.1.1.6")
CDP_CACHE_DEVICE_PORT = oid("1.3.6.1.4.1.9.9.23.1.2.1.1.7")


@dataclass(frozen=True)
class Table:
    """A table read as one multi-column walk; ``name`` appears in messages and recorded data."""

    name: str
    columns: tuple[Oid, ...]


TABLES: tuple[Table, ...] = (
    Table("ifTable", (IF_DESCR, IF_TYPE, IF_SPEED, IF_PHYS_ADDRESS, IF_ADMIN_STATUS, IF_OPER_STATUS)),
    Table("ifXTable", (IF_NAME, IF_HIGH_SPEED, IF_ALIAS)),
    Table("ipAddrTable", (IP_AD_ENT_IF_INDEX, IP_AD_ENT_NETMASK)),
    Table("ipAddressTable", (IP_ADDRESS_IF_INDEX, IP_ADDRESS_TYPE, IP_ADDRESS_PREFIX)),
    Table("entPhysicalTable", (ENT_PHYS_CONTAINED_IN, ENT_PHYS_CLASS, ENT_PHYS_SOFTWARE_REV, ENT_PHYS_SERIAL,
                               ENT_PHYS_MFG_NAME, ENT_PHYS_MODEL_NAME)),
    Table("lldpLocPortTable", (LLDP_LOC_PORT_ID_SUBTYPE, LLDP_LOC_PORT_ID, LLDP_LOC_PORT_DESC)),
    Table("lldpRemTable", (LLDP_REM_CHASSIS_ID_SUBTYPE, LLDP_REM_CHASSIS_ID, LLDP_REM_PORT_ID_SUBTYPE,
                           LLDP_REM_PORT_ID, LLDP_REM_PORT_DESC, LLDP_REM_SYS_NAME)),
    Table("cdpCacheTable", (CDP_CACHE_DEVICE_ID, CDP_CACHE_DEVICE_PORT)),
    Table("ipNetToMediaTable", (IP_NET_TO_MEDIA_PHYS, IP_NET_TO_MEDIA_TYPE)),
    Table("ipNetToPhysicalTable", (IP_NET_TO_PHYS_PHYS, IP_NET_TO_PHYS_TYPE)),
)
