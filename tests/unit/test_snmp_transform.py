"""SNMP transform on recorded walks (tests/data/snmp): raw var-binds -> Batch, then a real load.

The three lab switches are the data the snmpsim agents of the integration tests serve
(``scripts/snmp_agents.py write-lab`` wrote them); ``linux-snmpd.snmprec`` is what SNMP discovery
read from Debian's snmpd (``scripts/snmp_agents.py record-snmpd``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cmdb.batch import Batch, CIRecord
from cmdb.ingest import ingest
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.snmp import snmprec
from discovery.snmp.ber import (
    PDU_GET_BULK,
    PDU_RESPONSE,
    TAG_COUNTER64,
    TAG_END_OF_MIB_VIEW,
    TAG_INTEGER,
    TAG_IP_ADDRESS,
    TAG_OCTET_STRING,
    TAG_OID,
    BerError,
    decode_message,
    decode_oid,
    encode_oid,
    encode_request,
    encode_response,
)
from discovery.snmp.transform import RawDevice, to_snmp_batch
from discovery.snmp.vendors import identify

DATA = Path(__file__).resolve().parent.parent / "data" / "snmp"


def raw(name: str, address: str, failed: dict[str, str] | None = None) -> RawDevice:
    return RawDevice(address, address, "lab-v2c", snmprec.load(DATA / f"{name}.snmprec"), failed or {})


def by_ref(batch: Batch) -> dict[str, CIRecord]:
    return {c.ref: c for c in batch.cis if c.ref}


def links(batch: Batch) -> set[tuple[str, str, str, str, str]]:
    cis = by_ref(batch)
    out = set()
    for r in batch.rels:
        if r.type == "CONNECTED_TO":
            assert isinstance(r.src, str) and isinstance(r.dst, str)
            a, b = cis[r.src].attrs, cis[r.dst].attrs
            out.add((a["device_name"], a["if_name"], b["device_name"], b["if_name"], r.attrs["protocol"]))
    return out


def test_cisco_core_switch() -> None:
    batch = to_snmp_batch(raw("sw-core-1", "127.0.1.1"))
    assert (batch.source, batch.scope, batch.complete) == ("snmp", "127.0.1.1/32", True)
    device = by_ref(batch)["device"]
    assert device.cls == "Switch"
    assert device.attrs == {
        "management_ip": "127.0.1.1", "snmp_profile": "lab-v2c", "hostname": "sw-core-1",
        "description": device.attrs["description"], "vendor": "Cisco", "model": "C9300-48P",
        "serial_number": "FOC2231X0AB", "os": "IOS-XE", "os_version": "17.6.4",
        "sys_object_id": "1.3.6.1.4.1.9.1.2494",
        "mac_addresses": [f"70:1f:53:aa:01:{n:02x}" for n in range(1, 9)],  # physical ports only, not the SVIs
        "ip_addresses": ["10.0.0.1", "10.10.0.1", "10.255.0.1", "127.0.1.1", "2001:db8:0:10::1"],
    }
    assert device.attrs["description"].startswith("Cisco IOS Software [Bengaluru]")
    interfaces = {c.attrs["if_name"]: c.attrs for c in batch.cis
                  if c.cls == "Interface" and c.attrs["device_name"] == "sw-core-1"}
    assert sorted(interfaces) == sorted(["Vlan1", "Vlan10", "Loopback0",
                                         *[f"GigabitEthernet1/0/{n}" for n in range(1, 9)]])
    # ifName Gi1/0/1 is written in its long form, the spelling netmiko and LLDP peers use (discovery.names)
    assert interfaces["GigabitEthernet1/0/1"] == {
        "device_name": "sw-core-1", "if_name": "GigabitEthernet1/0/1", "alias": "to sw-acc-2",
        "mac_address": "70:1f:53:aa:01:01", "speed_mbps": 1000, "admin_status": "up", "oper_status": "up"}
    assert interfaces["GigabitEthernet1/0/5"]["oper_status"] == "down"
    assert links(batch) == {
        # port id subtype interfaceName; CDP reports the same link
        ("sw-core-1", "GigabitEthernet1/0/1", "sw-acc-2", "Ethernet1", "cdp+lldp"),
        # subtype local: the description names it
        ("sw-core-1", "GigabitEthernet1/0/2", "sw-acc-3", "ge-0/0/0", "lldp"),
        # CDP only where LLDP is silent
        ("sw-core-1", "GigabitEthernet1/0/8", "rtr-edge-1", "GigabitEthernet0/0/1", "cdp"),
    }
    addresses = {c.attrs["address"] for c in batch.cis if c.cls == "IPAddress"}
    # own four, and the ARP neighbours except the invalid entry 10.10.0.99
    assert addresses == {"10.0.0.1", "10.10.0.1", "10.255.0.1", "2001:db8:0:10::1", "10.0.0.2", "10.0.0.3",
                         "10.10.0.50"}
    arp = [c.attrs for c in batch.cis if c.ref == "ip:10.10.0.50"]
    assert arp == [{"address": "10.10.0.50", "mac_address": "52:54:00:12:34:56"}]
    refs = by_ref(batch)
    has_address = {(refs[r.src].attrs.get("if_name", "device"), refs[r.dst].attrs["address"])
                   for r in batch.rels if r.type == "HAS_ADDRESS" and isinstance(r.src, str)
                   and isinstance(r.dst, str)}
    assert has_address == {("device", "10.0.0.1"), ("device", "10.10.0.1"), ("device", "10.255.0.1"),
                           ("device", "2001:db8:0:10::1"), ("Vlan1", "10.0.0.1"), ("Vlan10", "10.10.0.1"),
                           ("Loopback0", "10.255.0.1"), ("Vlan10", "2001:db8:0:10::1")}
    assert sum(r.type == "HAS_INTERFACE" for r in batch.rels) == 11
    in_subnet = {(refs[r.src].attrs["address"], refs[r.dst].attrs["cidr"]) for r in batch.rels
                 if r.type == "IN_SUBNET" and isinstance(r.src, str) and isinstance(r.dst, str)}
    # from ipAdEntNetMask and ipAddressPrefix; the /32 loopback has no subnet of its own
    assert in_subnet == {("10.0.0.1", "10.0.0.0/24"), ("10.10.0.1", "10.10.0.0/24"),
                         ("2001:db8:0:10::1", "2001:db8:0:10::/64")}


def test_arista_maps_lldp_ports_by_name_not_number() -> None:
    batch = to_snmp_batch(raw("sw-acc-2", "127.0.1.2"))
    device = by_ref(batch)["device"]
    assert (device.cls, device.attrs["vendor"], device.attrs["model"], device.attrs["os"],
            device.attrs["os_version"], device.attrs["serial_number"]) == (
        "Switch", "Arista Networks", "DCS-7050SX3-48YC8", "EOS", "4.28.3M", "JPE19181234")
    # Management1 is LLDP port 7 but ifIndex 999001: the local port id (its name) finds it
    assert links(batch) == {
        ("sw-acc-2", "Ethernet1", "sw-core-1", "GigabitEthernet1/0/1", "lldp"),
        ("sw-acc-2", "Ethernet2", "sw-acc-3", "ge-0/0/1", "lldp"),
        ("sw-acc-2", "Management1", "oob-sw-1", "GigabitEthernet0/24", "lldp"),
    }


def test_juniper_without_entity_mib_and_with_a_loopback_address() -> None:
    batch = to_snmp_batch(raw("sw-acc-3", "127.0.1.3"))
    device = by_ref(batch)["device"]
    assert device.cls == "Switch"
    assert (device.attrs["vendor"], device.attrs["model"], device.attrs["os"], device.attrs["os_version"]) == (
        "Juniper Networks", "ex4300-48t", "Junos", "21.4R3-S4.9")
    assert "serial_number" not in device.attrs  # no ENTITY-MIB: no serial rather than a made-up one
    # 127.0.0.1 on lo0 is every box's: never an IPAddress CI nor an identity key
    assert device.attrs["ip_addresses"] == ["10.0.0.3", "127.0.1.3"]
    assert "127.0.0.1" not in {c.attrs.get("address") for c in batch.cis}
    assert links(batch) == {
        ("sw-acc-3", "ge-0/0/0", "sw-core-1", "GigabitEthernet1/0/2", "lldp"),
        ("sw-acc-3", "ge-0/0/1", "sw-acc-2", "Ethernet2", "lldp"),
    }


def test_linux_snmpd_recording() -> None:
    batch = to_snmp_batch(raw("linux-snmpd", "127.0.0.1"))
    device = by_ref(batch)["device"]
    assert device.cls == "Server"
    assert device.attrs["hostname"] == "lab-linux-1"
    assert (device.attrs["os"], device.attrs["os_version"]) == ("Linux", "6.18.44-fc-v769")
    assert "vendor" not in device.attrs and "sys_object_id" not in device.attrs  # Server has no sys_object_id
    assert device.attrs["ip_addresses"] == ["127.0.0.1", "192.0.2.2", "fd00::2"]
    assert device.attrs["mac_addresses"] == ["02:fc:00:00:00:01", "ae:82:fd:c2:cc:bc", "ae:e7:e7:a7:c5:9e"]
    addresses = {c.attrs["address"] for c in batch.cis if c.cls == "IPAddress"}
    # fe80:: (link-local), 127.0.0.1, ::1 and the broadcast 192.0.2.255 left out; 192.0.2.1 from ARP
    assert addresses == {"192.0.2.2", "fd00::2", "192.0.2.1"}
    assert {c.attrs["cidr"] for c in batch.cis if c.cls == "Subnet"} == {"192.0.2.0/24", "fd00::/64"}
    lo = next(c for c in batch.cis if c.cls == "Interface" and c.attrs["if_name"] == "lo")
    assert lo.attrs == {"device_name": "lab-linux-1", "if_name": "lo", "speed_mbps": 10, "admin_status": "up",
                        "oper_status": "up"}


def test_a_failed_table_makes_the_batch_partial() -> None:
    assert not to_snmp_batch(raw("sw-acc-2", "127.0.1.2", {"lldpRemTable": "timeout"})).complete


def test_three_switches_load_into_one_topology(tmp_path: Path) -> None:
    """A real load: stubs merge with the interfaces the neighbours' own batches describe."""
    store = SqliteStore(tmp_path / "t.db")
    try:
        for name, address in (("sw-core-1", "127.0.1.1"), ("sw-acc-2", "127.0.1.2"), ("sw-acc-3", "127.0.1.3")):
            ingest(store, to_snmp_batch(raw(name, address)))
        interfaces = {ci.id: ci.attrs for ci in store.search(SearchQuery(classes=["Interface"], limit=500)).items}
        # 11 + 7 + 5 own interfaces; the only stubs left are ports of boxes nobody polled
        assert len(interfaces) == 11 + 7 + 5 + 2
        got = {(interfaces[r.src]["device_name"], interfaces[r.src]["if_name"], interfaces[r.dst]["device_name"],
                interfaces[r.dst]["if_name"]) for r in store.relationships(type="CONNECTED_TO")}
        assert got == {
            ("sw-core-1", "GigabitEthernet1/0/1", "sw-acc-2", "Ethernet1"),
            ("sw-acc-2", "Ethernet1", "sw-core-1", "GigabitEthernet1/0/1"),
            ("sw-core-1", "GigabitEthernet1/0/2", "sw-acc-3", "ge-0/0/0"),
            ("sw-acc-3", "ge-0/0/0", "sw-core-1", "GigabitEthernet1/0/2"),
            ("sw-acc-2", "Ethernet2", "sw-acc-3", "ge-0/0/1"), ("sw-acc-3", "ge-0/0/1", "sw-acc-2", "Ethernet2"),
            ("sw-core-1", "GigabitEthernet1/0/8", "rtr-edge-1", "GigabitEthernet0/0/1"),
            ("sw-acc-2", "Management1", "oob-sw-1", "GigabitEthernet0/24"),
        }
        assert store.stats()["cis"] == len(store.search(SearchQuery(limit=1000)).items)
    finally:
        store.close()


@pytest.mark.parametrize(("object_id", "descr", "expected"), [
    ("1.3.6.1.4.1.12356.101.1.60", "FortiGate-60F", ("Firewall", "Fortinet")),
    ("1.3.6.1.4.1.9.1.745", "Cisco Adaptive Security Appliance Version 9.12(4)", ("Firewall", "Cisco")),
    ("1.3.6.1.4.1.9.1.1", "Cisco IOS Software, ISR Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version 16.9.4",
     ("Router", "Cisco")),
    ("1.3.6.1.4.1.2636.1.1.1.2.25", "Juniper Networks, Inc. mx480 internet router, kernel JUNOS 19.4R1",
     ("Router", "Juniper Networks")),
    ("1.3.6.1.4.1.2636.1.1.1.2.36", "Juniper Networks, Inc. srx240h2 internet router, kernel JUNOS 12.1X46",
     ("Firewall", "Juniper Networks")),
    ("1.3.6.1.4.1.11.2.3.9.1", "HP ETHERNET MULTI-ENVIRONMENT", ("Printer", "HP")),
    ("1.3.6.1.4.1.2435.2.3.9.1", "Brother NC-8300h", ("Printer", "Brother")),
    ("1.3.6.1.4.1.311.1.1.3.1.2", "Hardware: Intel64 Family 6 - Software: Windows Version 6.3 (Build 17763)",
     ("Server", "Microsoft")),
    ("1.3.6.1.4.1.3375.2.1.3.4.43", "Linux f5-bigip 3.10.0", ("LoadBalancer", "F5")),
    ("1.3.6.1.4.1.99999.1", "Some box", ("NetworkDevice", None)),
])
def test_platform_classes(object_id: str, descr: str, expected: tuple[str, str | None]) -> None:
    platform = identify(tuple(int(x) for x in object_id.split(".")), descr)
    assert (platform.cls, platform.vendor) == expected


# --- BER codec (the wire format of our own v2c client) --------------------------------------------------


@pytest.mark.parametrize("value", [(1, 3), (1, 3, 6, 1, 2, 1, 1, 5, 0), (1, 3, 6, 1, 4, 1, 2636, 128, 16383, 16384),
                                   (2, 999, 1), (1, 0, 8802, 1, 1, 2), (1, 3, 6, 1, 4, 1, 4294967295)])
def test_oid_round_trip(value: tuple[int, ...]) -> None:
    encoded = encode_oid(value)
    assert decode_oid(encoded[2:]) == value


def test_request_and_response_round_trip() -> None:
    request = encode_request(PDU_GET_BULK, 0x7FFFFFFF, b"secret", [(1, 3, 6, 1, 2, 1, 2, 2, 1, 2)], 0, 25)
    version, community, pdu, request_id, non_rep, max_rep, vbs = decode_message(request)
    assert (version, community, pdu, request_id, non_rep, max_rep) == (1, b"secret", PDU_GET_BULK, 0x7FFFFFFF, 0, 25)
    assert vbs == [((1, 3, 6, 1, 2, 1, 2, 2, 1, 2), 0x05, None)]
    varbinds: list[Any] = [((1, 3, 6, 1, 2, 1, 1, 5, 0), TAG_OCTET_STRING, b"x" * 300),  # long-form length
                           ((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 1), TAG_INTEGER, -5),
                           ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), TAG_COUNTER64, (1 << 64) - 1),
                           ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), TAG_IP_ADDRESS, bytes([10, 0, 0, 1])),
                           ((1, 3, 6, 1, 2, 1, 1, 2, 0), TAG_OID, (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)),
                           ((1, 3, 6, 1, 9), TAG_END_OF_MIB_VIEW, None)]
    decoded = decode_message(encode_response(42, b"c", varbinds))
    assert decoded[2:4] == (PDU_RESPONSE, 42)
    assert decoded[6] == varbinds


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x03\x02\x01", b"\x04\x00", b"\x30\x81\xff\x02\x01\x01"])
def test_malformed_datagrams_are_errors(data: bytes) -> None:
    with pytest.raises(BerError):
        decode_message(data)


def test_snmprec_round_trip() -> None:
    text = (DATA / "sw-core-1.snmprec").read_text()
    assert snmprec.dumps(snmprec.parse(text)) == text
