"""Network device discovery without a network: golden command outputs -> records -> batches.

tests/data/netdev/**/<command>.raw is a command's output as netmiko returns it; the .yml next to it
holds the records it must parse into (or the parse error it must raise). ``fakenos/<device_type>/``
are fakenos's canned outputs, ``lab/<device>/`` the lab devices' outputs the integration tests
serve. After a deliberate parser change, regenerate with ``CMDB_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from cmdb.ingest import ingest
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.names import long_interface_name, short_hostname
from discovery.netdev.platforms import (
    PLATFORMS,
    CommandParseError,
    command_for,
    detect_device_type,
    neighbour_class,
    parse_command,
    platform_for,
)
from discovery.netdev.records import NeighbourRecord, Record, SystemRecord, as_dict, record_from_dict
from discovery.netdev.transform import Reach, device_batch, merge_records, neighbour_batch

DATA = Path(__file__).resolve().parent.parent / "data" / "netdev"
LAB = yaml.safe_load((DATA / "lab" / "devices.yml").read_text())
RAWS = sorted(DATA.rglob("*.raw"))


def _device_type(raw: Path) -> str:
    if raw.parent.name in PLATFORMS:
        return raw.parent.name
    return str(LAB[raw.parent.name]["platform"])


def _parse(raw: Path) -> dict[str, Any]:
    device_type, command = _device_type(raw), raw.stem.replace("_", " ")
    doc: dict[str, Any] = {"device_type": device_type, "command": command}
    try:
        doc["records"] = [as_dict(r) for r in parse_command(device_type, command_for(device_type, command),
                                                            raw.read_text())]
    except CommandParseError as exc:
        doc["error"] = str(exc)
    return doc


@pytest.mark.parametrize("raw", RAWS, ids=[str(p.relative_to(DATA)) for p in RAWS])
def test_golden_parse(raw: Path) -> None:
    golden = raw.with_suffix(".yml")
    got = _parse(raw)
    if os.environ.get("CMDB_UPDATE_GOLDEN"):
        golden.write_text(yaml.safe_dump(got, sort_keys=False, allow_unicode=True, width=120))
    assert golden.exists(), f"{golden} is missing; run with CMDB_UPDATE_GOLDEN=1 and review it"
    assert got == yaml.safe_load(golden.read_text())


def test_every_platform_command_has_golden_outputs() -> None:
    covered = {(_device_type(p), p.stem.replace("_", " ")) for p in RAWS}
    missing = [(dt, c.text) for dt, p in PLATFORMS.items() for c in p.commands if (dt, c.text) not in covered]
    assert missing == []


def test_fakenos_canned_outputs_that_do_not_parse_are_errors_naming_the_command() -> None:
    errors = {(p.parent.name, p.stem) for p in RAWS if "error" in yaml.safe_load(p.with_suffix(".yml").read_text())}
    assert ("arista_eos", "show_version") in errors  # cEOSLab's canned text misses lines the template requires
    assert not any(p.parent.parent.name == "lab" for p in RAWS if (p.parent.name, p.stem) in errors)
    doc = _parse(DATA / "fakenos" / "arista_eos" / "show_version.raw")
    assert doc["error"].startswith("`show version`: the arista_eos TextFSM template does not match")


# -- CLI answers that are no data -----------------------------------------------------------------

@pytest.mark.parametrize(("device_type", "command", "text"), [
    ("cisco_ios", "show version", "                ^\n% Invalid input detected at '^' marker.\n"),
    ("arista_eos", "show hostname", "% Invalid input"),
    ("juniper_junos", "show chassis hardware", "Unknown command"),
    ("juniper_junos", "show interfaces", "              ^\nsyntax error, expecting <command>.\n"),
    ("cisco_ios", "show interfaces", ""),
])
def test_rejected_or_empty_output_is_a_parse_error(device_type: str, command: str, text: str) -> None:
    with pytest.raises(CommandParseError) as err:
        parse_command(device_type, command_for(device_type, command), text)
    assert err.value.command == command


@pytest.mark.parametrize(("device_type", "command", "text"), [
    ("cisco_ios", "show cdp neighbors detail", "% CDP is not enabled\n"),
    ("cisco_ios", "show lldp neighbors detail", "% LLDP is not enabled\n"),
    ("juniper_junos", "show lldp neighbors", ""),
    ("juniper_junos", "show lldp neighbors",
     "Local Interface    Parent Interface    Chassis Id          Port info          System Name\n"),
])
def test_no_neighbour_protocol_is_no_neighbours(device_type: str, command: str, text: str) -> None:
    assert parse_command(device_type, command_for(device_type, command), text) == []


def test_a_template_mismatch_names_the_command_and_keeps_no_text() -> None:
    text = "Ethernet1 is up, line protocol is up\n  Something no template knows\n"
    with pytest.raises(CommandParseError) as err:
        parse_command("arista_eos", command_for("arista_eos", "show interfaces"), text)
    assert err.value.command == "show interfaces" and "Something no template knows" in str(err.value)


def test_a_neighbour_port_that_names_no_interface_is_no_link() -> None:
    """Junos sends its ifIndex as LLDP port id; when the port description is free text too, the far
    port cannot be named, and a link to a made-up port would never meet the real one."""
    raw = (DATA / "lab" / "sw1" / "show_lldp_neighbors_detail.raw").read_text()
    text = raw.replace("Port Description: ge-0/0/0", "Port Description: uplink to r1")
    assert text != raw
    records = parse_command("cisco_ios", command_for("cisco_ios", "show lldp neighbors detail"), text)
    assert sorted(r.remote_name for r in records if isinstance(r, NeighbourRecord)) == ["core9", "leaf1"]


# -- names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("short", "long"), [
    ("Gi1/0/1", "GigabitEthernet1/0/1"), ("Gig 1/0/1", "GigabitEthernet1/0/1"),
    ("GigabitEthernet1/0/1", "GigabitEthernet1/0/1"), ("Te1/1/1", "TenGigabitEthernet1/1/1"),
    ("Fa0/1", "FastEthernet0/1"), ("Et1", "Ethernet1"), ("Eth1/49", "Ethernet1/49"), ("Po10", "Port-channel10"),
    ("Lo0", "Loopback0"), ("Vl10", "Vlan10"), ("Twe1/0/1", "TwentyFiveGigE1/0/1"), ("Ma1", "Management1"),
    ("ge-0/0/0", "ge-0/0/0"), ("lo0", "lo0"), ("ae0.10", "ae0.10"), ("mgmt0", "mgmt0"), ("eth0", "eth0"),
    ("port-channel10", "port-channel10"), ("Ethernet1/1.100", "Ethernet1/1.100"),
])
def test_interface_names_take_their_long_form(short: str, long: str) -> None:
    assert long_interface_name(short) == long


@pytest.mark.parametrize(("name", "short"), [
    ("sw1.lab.example", "sw1"), ("n9k1(FOX1234ABCD)", "n9k1"), ("R1", "R1"), ("10.1.1.1", "10.1.1.1"),
    ('"leaf1.lab.example"', "leaf1"),
])
def test_device_names_are_short_hostnames(name: str, short: str) -> None:
    assert short_hostname(name) == short


# -- platform knowledge ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "device_type"), [
    ("lab/sw1/show_version.raw", "cisco_ios"), ("fakenos/cisco_ios/show_version.raw", "cisco_ios"),
    ("lab/leaf1/show_version.raw", "arista_eos"), ("fakenos/arista_eos/show_version.raw", "arista_eos"),
    ("lab/r1/show_version.raw", "juniper_junos"), ("fakenos/juniper_junos/show_version.raw", "juniper_junos"),
    ("fakenos/cisco_nxos/show_version.raw", "cisco_nxos"),
])
def test_device_type_is_detected_from_show_version(raw: str, device_type: str) -> None:
    assert detect_device_type((DATA / raw).read_text()) == device_type


def test_unknown_or_unsupported_show_version_is_not_guessed() -> None:
    assert detect_device_type("Cisco IOS XR Software, Version 7.3.2") is None
    assert detect_device_type("MikroTik RouterOS 6.47") is None


@pytest.mark.parametrize(("device_type", "model", "cls"), [
    ("cisco_ios", "C9300-24T", "Switch"), ("cisco_ios", "WS-C2960X-48FPD-L", "Switch"),
    ("cisco_ios", "ISR4451-X/K9", "Router"), ("cisco_ios", "CSR1000V", "Router"),
    ("cisco_ios", "3640", "NetworkDevice"), ("juniper_junos", "MX204", "Router"),
    ("juniper_junos", "ex4300-48t", "Switch"), ("juniper_junos", "SRX340", "Firewall"),
    ("juniper_junos", "vSRX", "Firewall"), ("arista_eos", "DCS-7050", "Switch"),
])
def test_device_class_from_model(device_type: str, model: str, cls: str) -> None:
    assert platform_for(device_type).classify(SystemRecord(model=model)) == cls


@pytest.mark.parametrize(("platform", "caps", "cls"), [
    ("cisco WS-C2960-8TC-L", ["switch"], "Switch"), ("Cisco 3825", ["router", "switch"], "Switch"),
    ("cisco ISR4331/K9", ["router"], "Router"), ("MikroTik", ["router"], "Router"),
    ("Cisco IOS Software, C2900 Software (C2900-UNIVERSALK9-M), Version 15.7(3)M5", ["router"], "Router"),
    ("Cisco IOS Software, C3750 Software (C3750-IPBASEK9-M), Version 12.2(44)SE2", ["bridge", "router"], "Switch"),
    ("Arista Networks EOS version 4.28", ["bridge", "router"], "Switch"), ("VMware", ["host"], "Host"),
    ("Cisco IP Phone 7962G", ["bridge", "phone"], "NetworkDevice"), (None, [], "NetworkDevice"),
])
def test_neighbour_class_from_what_it_advertises(platform: str | None, caps: list[str], cls: str) -> None:
    rec = NeighbourRecord("cdp", "GigabitEthernet1/0/1", "x", "GigabitEthernet0/1", platform=platform,
                          capabilities=caps)
    assert neighbour_class(rec) == cls


# -- records -> batch -------------------------------------------------------------------------------

def lab_records(device: str) -> list[Record]:
    """The lab device's golden records, in its platform's command order."""
    platform = platform_for(LAB[device]["platform"])
    out: list[Record] = []
    for command in platform.commands:
        doc = yaml.safe_load((DATA / "lab" / device / f"{command.text.replace(' ', '_')}.yml").read_text())
        out.extend(record_from_dict(r) for r in doc["records"])
    return out


def lab_batch(device: str, complete: bool = True) -> Any:
    reach = Reach(target=LAB[device]["address"], address=LAB[device]["address"], host_key="SHA256:abc",
                  profile="lab")
    return device_batch(platform_for(LAB[device]["platform"]), merge_records(lab_records(device)), reach,
                        complete=complete)


def links(batch: Any) -> set[tuple[str, str, str, str, str]]:
    cis = {c.ref: c.attrs for c in batch.cis}
    return {(cis[r.src]["device_name"], cis[r.src]["if_name"], cis[r.dst]["device_name"], cis[r.dst]["if_name"],
             r.attrs["protocol"]) for r in batch.rels if r.type == "CONNECTED_TO"}


def test_ios_switch_batch_holds_device_interfaces_addresses_and_neighbour_ports() -> None:
    batch = lab_batch("sw1")
    assert (batch.source, batch.scope, batch.complete) == ("ssh", "127.0.5.1/32", True)
    device = batch.cis[0]
    assert device.cls == "Switch"
    assert device.attrs == {
        "hostname": "sw1", "serial_number": "FOC2231X0AB", "model": "C9300-24T", "vendor": "Cisco", "os": "IOS-XE",
        "os_version": "17.6.4", "management_ip": "127.0.5.1",
        "ip_addresses": ["10.0.13.1", "10.10.0.1", "10.99.0.1", "10.255.0.1", "127.0.5.1"],
        "mac_addresses": ["70:d3:79:be:6a:00"], "ssh_host_key": "SHA256:abc", "ssh_profile": "lab",
    }
    own = {c.attrs["if_name"]: c.attrs for c in batch.cis if c.cls == "Interface" and c.attrs["device_name"] == "sw1"}
    assert sorted(own) == ["GigabitEthernet0/0", "GigabitEthernet1/0/1", "GigabitEthernet1/0/2",
                           "GigabitEthernet1/0/3", "GigabitEthernet1/0/4", "Loopback0", "Vlan10"]
    assert own["GigabitEthernet1/0/4"] == {"device_name": "sw1", "if_name": "GigabitEthernet1/0/4",
                                           "mac_address": "70:d3:79:be:6a:84", "speed_mbps": 1000,
                                           "admin_status": "down", "oper_status": "down"}
    assert own["GigabitEthernet1/0/1"]["alias"] == "to leaf1 Et1"
    assert sum(r.type == "HAS_INTERFACE" for r in batch.rels) == len(own)
    assert links(batch) == {
        ("sw1", "GigabitEthernet1/0/1", "leaf1", "Ethernet1", "lldp"),
        ("sw1", "GigabitEthernet1/0/2", "r1", "ge-0/0/0", "lldp"),
        ("sw1", "GigabitEthernet1/0/3", "core9", "TenGigabitEthernet1/0/1", "cdp+lldp"),  # one link, both protocols
    }
    addresses = {c.attrs["address"] for c in batch.cis if c.cls == "IPAddress"}
    subnets = {c.attrs["cidr"] for c in batch.cis if c.cls == "Subnet"}
    assert addresses == {"10.0.13.1", "10.10.0.1", "10.255.0.1", "10.99.0.1"}
    assert subnets == {"10.0.13.0/30", "10.10.0.0/24", "10.99.0.0/24"}  # a loopback /32 is no subnet
    assert not any(c.cls.endswith("Device") or c.cls in ("Switch", "Router") for c in batch.cis[1:])


def test_eos_and_junos_batches() -> None:
    leaf = lab_batch("leaf1")
    assert (leaf.cis[0].cls, leaf.cis[0].attrs["fqdn"], leaf.cis[0].attrs["serial_number"]) == (
        "Switch", "leaf1.lab.example", "JPE19181234")
    assert links(leaf) == {("leaf1", "Ethernet1", "sw1", "GigabitEthernet1/0/1", "lldp"),
                           ("leaf1", "Ethernet2", "r1", "ge-0/0/1", "lldp")}
    r1 = lab_batch("r1")
    assert (r1.cis[0].cls, r1.cis[0].attrs["model"], r1.cis[0].attrs["serial_number"],
            r1.cis[0].attrs["os_version"]) == ("Router", "MX204", "JN11F2D3AAFA", "21.4R3-S2.3")
    assert links(r1) == {("r1", "ge-0/0/0", "sw1", "GigabitEthernet1/0/2", "lldp"),
                         ("r1", "ge-0/0/1", "leaf1", "Ethernet2", "lldp")}
    speeds = {c.attrs["if_name"]: c.attrs.get("speed_mbps") for c in r1.cis if c.cls == "Interface"}
    assert speeds["ge-0/0/0"] == 1000 and speeds["ge-0/0/0.0"] is None


def test_the_lab_batches_are_valid_and_their_ports_meet(tmp_path: Path) -> None:
    """Ingested together, the stub ports of each device's neighbours are the other devices' own ports."""
    store = SqliteStore(str(tmp_path / "c.db"))
    try:
        for device in ("sw1", "leaf1", "r1"):
            ingest(store, lab_batch(device))
        interfaces = store.search(SearchQuery(classes=["Interface"], limit=100)).items
        names = sorted((i.attrs["device_name"], i.attrs["if_name"]) for i in interfaces)
        assert len(names) == len(set(names)) == 18  # 7 + 5 + 5 own ports and core9's one stub port
        stub = [i for i in interfaces if i.attrs["device_name"] == "core9"]
        assert [s.attrs["if_name"] for s in stub] == ["TenGigabitEthernet1/0/1"]
    finally:
        store.close()


def test_partial_view_is_not_complete() -> None:
    assert lab_batch("sw1", complete=False).complete is False


def test_a_device_without_hostname_has_no_batch() -> None:
    reach = Reach("127.0.0.9", "127.0.0.9", "SHA256:x", "lab")
    with pytest.raises(ValueError, match="hostname"):
        device_batch(platform_for("cisco_ios"), merge_records([SystemRecord(serial_number="X")]), reach,
                     complete=True)


def test_neighbour_stubs_only_for_devices_not_reached_and_with_an_address() -> None:
    neighbours = [n for d in ("sw1", "leaf1", "r1") for n in merge_records(lab_records(d)).neighbours]
    batch = neighbour_batch(neighbours, ["sw1", "leaf1", "r1"], "run-1")
    assert batch is not None and (batch.source, batch.complete) == ("neighbours", False)
    devices = [(c.cls, c.attrs) for c in batch.cis if c.cls != "Interface"]
    assert devices == [("Switch", {"hostname": "core9", "management_ip": "10.255.0.9",
                                   "ip_addresses": ["10.255.0.9"]})]
    ports = [c.attrs for c in batch.cis if c.cls == "Interface"]
    assert ports == [{"device_name": "core9", "if_name": "TenGigabitEthernet1/0/1"}]
    assert [r.type for r in batch.rels] == ["HAS_INTERFACE"]
    no_address = NeighbourRecord("lldp", "ge-0/0/5", "edge7", "xe-0/0/1")
    assert neighbour_batch([no_address], [], "run-1") is None
    # Reached in this run: its own batch says who it is.
    assert neighbour_batch(neighbours, ["sw1", "leaf1", "r1", "core9"], "run-1") is None
