"""One switch, two discovery methods: SNMP (snmpsim) and SSH (netmiko against fakenos) on the same address.

The fakenos lab's ``sw1`` (tests/data/netdev/lab/sw1) also answers SNMP on its address, from
tests/data/netdev_snmp/sw1.snmprec (written by scripts/netdev_snmprec.py to say what the show
commands say). Whichever method runs first, the two must make one Switch CI with one set of
Interfaces, the neighbour links of both methods on the same Interface CIs, no identity conflict,
and a second round of both methods must change nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from snmp_agents import SimAgent, SnmpsimAgents, free_udp_port  # scripts/, on sys.path through tests/conftest.py

from cmdb.model import default_schema
from cmdb.store.base import CIState, DiscoveryRunRecord, SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.credentials import SnmpProfile, SshProfile, load_credentials
from discovery.netdev.collector import NetDeviceCollector
from discovery.runner import run_discovery
from discovery.snmp import snmprec
from discovery.snmp.client import SnmpSettings
from discovery.snmp.collector import SnmpCollector

from .conftest import USERNAME, Lab

SNMPREC = Path(__file__).resolve().parents[2] / "data" / "netdev_snmp" / "sw1.snmprec"
SW1_PORTS = {"GigabitEthernet0/0", "GigabitEthernet1/0/1", "GigabitEthernet1/0/2", "GigabitEthernet1/0/3",
             "GigabitEthernet1/0/4", "Loopback0", "Vlan10"}
SW1_LINKS = {  # local port -> (remote device, remote port), as both CDP/LLDP in show commands and LLDP-MIB say
    "GigabitEthernet1/0/1": ("leaf1", "Ethernet1"),
    "GigabitEthernet1/0/2": ("r1", "ge-0/0/0"),
    "GigabitEthernet1/0/3": ("core9", "TenGigabitEthernet1/0/1"),
}
# What both methods say of the box itself, which must be the same value from each.
SHARED_ATTRS = ("hostname", "serial_number", "model", "vendor", "os_version", "management_ip", "ip_addresses")


@pytest.fixture(scope="module")
def sw1_snmp(netdev_lab: Lab) -> Iterator[SnmpsimAgents]:
    """An snmpsim agent on fakenos sw1's own address (UDP beside its SSH on TCP), with a random community."""
    address = netdev_lab.addresses["sw1"]
    agent = SimAgent(address, snmprec.load(SNMPREC))
    with SnmpsimAgents([agent], community="sw1-" + secrets.token_hex(6), port=free_udp_port(address)) as sim:
        yield sim


def credentials(where: Path, lab: Lab, sim: SnmpsimAgents) -> Path:
    """One profiles file: ``lab`` (SSH password) and ``sw1-v2c`` (SNMP community), secrets in 0600 files."""
    def secret(name: str, value: str) -> str:
        path = where / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        return str(path)

    doc = {"profiles": {
        "lab": {"type": "ssh", "username": USERNAME, "password": {"file": secret("ssh.password", lab.password)},
                "port": lab.port},
        "sw1-v2c": {"type": "snmp", "version": "2c", "community": {"file": secret("snmp.community", sim.community)},
                    "port": sim.port},
    }}
    path = where / "credentials.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Methods:
    """Runs SNMP or SSH discovery of one address into one store, as ``cmdb discover`` would."""

    def __init__(self, where: Path, lab: Lab, sim: SnmpsimAgents, address: str) -> None:
        creds = load_credentials(credentials(where, lab, sim))
        self.snmp_profiles = [p for p in creds.pick(["sw1-v2c"], "snmp") if isinstance(p, SnmpProfile)]
        self.ssh_profiles = [p for p in creds.pick(["lab"], "ssh") if isinstance(p, SshProfile)]
        self.known_hosts = where / "known_hosts"
        self.address = address

    def run(self, store: SqliteStore, method: str) -> DiscoveryRunRecord:
        collector: SnmpCollector | NetDeviceCollector
        if method == "snmp":
            collector = SnmpCollector(self.snmp_profiles, SnmpSettings(timeout=1.0, retries=1))
        else:
            collector = NetDeviceCollector(self.ssh_profiles, self.known_hosts, trust_on_first_use=True,
                                           connect_timeout=5, command_timeout=10, workers=1)
        record = asyncio.run(run_discovery(collector, [self.address], store, concurrency=1, target_timeout=60))
        [outcome] = record.outcomes
        assert outcome["outcome"] == "ok" and "partial" not in outcome["detail"], (method, outcome["detail"])
        return record


def changes(record: DiscoveryRunRecord) -> list[int]:
    """History events each batch of the run wrote: the target's, then any run-level one (stub neighbours)."""
    return [o["changes"] for o in record.outcomes] + [b["changes"] for b in record.options.get("run_level_batches", [])]


def devices(store: SqliteStore) -> list[CIState]:
    return store.search(SearchQuery(classes=default_schema().descendants_concrete("Device"), limit=100)).items


def interfaces(store: SqliteStore) -> dict[str, CIState]:
    return {i.id: i for i in store.search(SearchQuery(classes=["Interface"], limit=500)).items}


def topology(store: SqliteStore, switch: CIState) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """sw1's ports (if_name -> Interface id, through HAS_INTERFACE) and its CONNECTED_TO links
    (rel id -> local Interface id, remote device, remote port)."""
    ports = interfaces(store)
    owned = {ports[r.dst].attrs["if_name"]: r.dst
             for r in store.relationships(switch.id, type="HAS_INTERFACE", direction="out")}
    links = {r.id: (r.src, ports[r.dst].attrs["device_name"], ports[r.dst].attrs["if_name"])
             for r in store.relationships(type="CONNECTED_TO")}
    return owned, links


def ports_by_id(ports: dict[str, str]) -> dict[str, str]:
    return {ci_id: name for name, ci_id in ports.items()}


def rel_sources(store: SqliteStore) -> dict[str, set[str]]:
    """Relationship id -> the sources that saw it (its sightings, from the store's dump)."""
    out: dict[str, set[str]] = {}
    for table, row in store.dump():
        if table == "sighting" and row["kind"] == "rel":
            out.setdefault(row["item_id"], set()).add(row["source"])
    return out


def the_switch(store: SqliteStore, address: str) -> CIState:
    [switch] = [d for d in devices(store) if d.attrs.get("management_ip") == address]
    return switch


@pytest.mark.parametrize("order", [("snmp", "ssh"), ("ssh", "snmp")], ids=["snmp-then-ssh", "ssh-then-snmp"])
def test_snmp_and_ssh_discovery_of_one_switch_make_one_ci(netdev_lab: Lab, sw1_snmp: SnmpsimAgents,
                                                          tmp_path: Path, order: tuple[str, str]) -> None:
    address = netdev_lab.addresses["sw1"]
    methods = Methods(tmp_path, netdev_lab, sw1_snmp, address)
    store = SqliteStore(str(tmp_path / "cmdb.db"))
    try:
        first, second = order
        methods.run(store, first)
        switch = the_switch(store, address)
        ports, links = topology(store, switch)
        assert set(ports) == SW1_PORTS, f"{first} alone"
        assert {(ports_by_id(ports)[src], (dev, port)) for src, dev, port in links.values()} == set(
            SW1_LINKS.items()), f"{first} alone"

        methods.run(store, second)
        merged = the_switch(store, address)
        assert merged.id == switch.id and merged.cls == "Switch"
        assert [d.attrs["hostname"] for d in devices(store) if d.attrs.get("serial_number") == "FOC2231X0AB"] == [
            "sw1"]
        # Each method's view is in the one CI: the class both claim, the values both give, and their own.
        prov: dict[str, Any] = merged.provenance
        assert {src: v.value for src, v in prov["@class"].items()} == {"snmp": "Switch", "ssh": "Switch"}
        for attr in SHARED_ATTRS:
            assert {src: v.value for src, v in prov[attr].items()} == {
                "snmp": merged.attrs[attr], "ssh": merged.attrs[attr]}, attr
        assert set(prov["sys_object_id"]) == set(prov["snmp_profile"]) == {"snmp"}
        assert set(prov["ssh_host_key"]) == set(prov["ssh_profile"]) == {"ssh"}
        assert (merged.attrs["snmp_profile"], merged.attrs["ssh_profile"]) == ("sw1-v2c", "lab")

        # One set of Interfaces: the second method found every port of the first, by the same CI.
        assert topology(store, merged) == (ports, links)
        every = [(i.attrs["device_name"], i.attrs["if_name"]) for i in interfaces(store).values()]
        assert len(every) == len(set(every)) == len(SW1_PORTS) + len(SW1_LINKS)
        owned_by_others = {r.dst for r in store.relationships(type="HAS_INTERFACE") if r.src != merged.id}
        stubs = {i.id for i in interfaces(store).values() if i.attrs["device_name"] != "sw1"}
        assert owned_by_others <= stubs  # neighbours' ports hang off neighbour stubs, never sw1's
        for port in store.get_cis(ports.values()).values():
            assert set(port.provenance["if_name"]) == {"snmp", "ssh"}, port.attrs["if_name"]
        # The same three links, each seen by both methods (no second link beside the first).
        seen_by = rel_sources(store)
        assert {rel_id: seen_by[rel_id] for rel_id in links} == {rel_id: {"snmp", "ssh"} for rel_id in links}
        assert store.conflicts() == []

        # A second round of both methods is quiet: no attribute, class or link flips between them.
        rounds = [methods.run(store, method) for method in order]
        assert topology(store, the_switch(store, address)) == (ports, links)
        assert store.conflicts() == []
        round_ids = {r.run_id for r in rounds}
        events = [e for e in store.events() if (e.run_id or "").split("/")[0] in round_ids]
        assert [(e.kind, e.source, e.attr, e.old, e.new) for e in events] == []
        for path in tmp_path.glob("cmdb.db*"):  # the secrets are nowhere in the store (graph, history, runs)
            data = path.read_bytes()
            assert netdev_lab.password.encode() not in data and sw1_snmp.community.encode() not in data
        assert all(n == 0 for r in rounds for n in changes(r)), [changes(r) for r in rounds]
    finally:
        store.close()


