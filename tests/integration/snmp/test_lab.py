"""Three simulated switches (snmpsim, LLDP between them) discovered into one topology."""

from __future__ import annotations

import asyncio
from pathlib import Path

from snmp_agents import SnmpsimAgents

from cmdb.batch import Batch, CIRecord
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.credentials import SnmpProfile, load_credentials
from discovery.runner import run_discovery
from discovery.snmp.client import SnmpSettings
from discovery.snmp.collector import SnmpCollector
from tests.integration.snmp.conftest import LAB, Profiles

EXPECTED_LINKS = {
    ("sw-core-1", "GigabitEthernet1/0/1", "sw-acc-2", "Ethernet1"),
    ("sw-acc-2", "Ethernet1", "sw-core-1", "GigabitEthernet1/0/1"),
    ("sw-core-1", "GigabitEthernet1/0/2", "sw-acc-3", "ge-0/0/0"),
    ("sw-acc-3", "ge-0/0/0", "sw-core-1", "GigabitEthernet1/0/2"),
    ("sw-acc-2", "Ethernet2", "sw-acc-3", "ge-0/0/1"), ("sw-acc-3", "ge-0/0/1", "sw-acc-2", "Ethernet2"),
    # neighbours nobody polls: stub interfaces of their own
    ("sw-core-1", "GigabitEthernet1/0/8", "rtr-edge-1", "GigabitEthernet0/0/1"),
    ("sw-acc-2", "Management1", "oob-sw-1", "GigabitEthernet0/24"),
}


def lab_collector(profiles: Profiles) -> SnmpCollector:
    chosen = [p for p in load_credentials(profiles.path).pick(["lab-v2c"], "snmp") if isinstance(p, SnmpProfile)]
    return SnmpCollector(chosen, SnmpSettings(timeout=1.0, retries=1))


def links(store: SqliteStore) -> set[tuple[str, str, str, str]]:
    interfaces = {ci.id: ci.attrs for ci in store.search(SearchQuery(classes=["Interface"], limit=1000)).items}
    return {(interfaces[r.src]["device_name"], interfaces[r.src]["if_name"], interfaces[r.dst]["device_name"],
             interfaces[r.dst]["if_name"]) for r in store.relationships(type="CONNECTED_TO")}


def test_three_switches_one_topology_and_a_quiet_second_run(profiles: Profiles, lab: SnmpsimAgents,
                                                            tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "lab.db")
    try:
        # A scan saw sw-core-1's address first (a Host, its reverse-DNS name not the sysName): SNMP must land
        # on that CI through the address alone
        scan = Batch(source="scan", scope="127.0.1.1/32", complete=True, cis=[CIRecord(
            "Host", {"management_ip": "127.0.1.1", "ip_addresses": ["127.0.1.1"], "hostname": "core1-mgmt"})])
        ingest(store, scan)
        scanned_id = store.search(SearchQuery(classes=["Host"], limit=5)).items[0].id

        first = asyncio.run(run_discovery(lab_collector(profiles), list(LAB), store))
        assert [(o["target"], o["outcome"], o["profile"]) for o in first.outcomes] == [
            (address, "ok", "lab-v2c") for address in LAB]
        assert links(store) == EXPECTED_LINKS

        devices = store.search(SearchQuery(classes=default_schema().descendants_concrete("Device"), limit=100)).items
        assert sorted((d.cls, d.attrs["hostname"], d.attrs["management_ip"]) for d in devices) == [
            ("Switch", "sw-acc-2", "127.0.1.2"), ("Switch", "sw-acc-3", "127.0.1.3"),
            ("Switch", "sw-core-1", "127.0.1.1")]
        core = next(d for d in devices if d.attrs["hostname"] == "sw-core-1")
        assert core.id == scanned_id  # one CI for what scan and SNMP saw
        assert (core.attrs["serial_number"], core.attrs["model"], core.attrs["snmp_profile"]) == (
            "FOC2231X0AB", "C9300-48P", "lab-v2c")
        # every interface hangs off its own switch: no stub is left beside a real one
        interfaces = store.search(SearchQuery(classes=["Interface"], limit=1000)).items
        assert len(interfaces) == 11 + 7 + 5 + 2
        owned = {r.dst for r in store.relationships(type="HAS_INTERFACE", limit=1000)}
        assert {i.attrs["device_name"] for i in interfaces if i.id not in owned} == {"rtr-edge-1",
                                                                                       "oob-sw-1"}
        runs = {r.run_id: r for r in store.runs("snmp", 10)}
        assert all(r.complete for r in runs.values()) and {r.scope for r in runs.values()} == {
            f"{a}/32" for a in LAB}

        events_before = len(store.events())
        second = asyncio.run(run_discovery(lab_collector(profiles), list(LAB), store))
        assert [o["changes"] for o in second.outcomes] == [0, 0, 0]
        assert all(o["items"] > 0 for o in second.outcomes)
        assert len(store.events()) == events_before
        assert links(store) == EXPECTED_LINKS
    finally:
        store.close()
