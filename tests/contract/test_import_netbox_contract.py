"""NetBox exports on every store: the graph they make, a merge with discovery, a re-import that writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore, SearchQuery
from importers.netbox import read_netbox_export, transform_netbox
from importers.table_import import ImportReport, import_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "netbox"


def import_netbox(store: GraphStore) -> ImportReport:
    reading = transform_netbox(read_netbox_export(DATA / "export.json"), "export.json")
    assert reading.notes == ["cable 3: not between two interfaces; skipped"]
    return import_batches(store, [(reading.labels, reading.batch)], ImportReport("export.json", "import:netbox"),
                          schema=default_schema(), config=ReconcileConfig())


def graph(store: GraphStore) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    cis = {c.id: f"{c.cls}:{c.name}" for c in store.search(SearchQuery(limit=200)).items}
    return cis, {(cis[r.src], r.type, cis[r.dst]) for r in store.relationships(limit=500)}


def test_netbox_export_becomes_the_graph_and_reimport_changes_nothing(store: GraphStore) -> None:
    ingest(store, Batch.from_dict({"source": "snmp", "cis": [
        {"class": "Switch", "hostname": "sw-core-fra-1", "serial_number": "JPE20301234", "os": "EOS 4.31"}]}))
    report = import_netbox(store)
    assert report.totals["conflicts"] == 0
    cis, edges = graph(store)
    assert sorted(v for v in cis.values() if v.split(":")[0] in ("Switch", "Server", "Router", "VirtualMachine")) == [
        "Router:rtr-edge-fra-1", "Server:db-01.fra1.example.com", "Switch:sw-core-fra-1",
        "VirtualMachine:orders-app-1", "VirtualMachine:orders-app-2"]
    assert {("Interface:sw-core-fra-1 Ethernet1", "CONNECTED_TO", "Interface:db-01 eno1"),
            ("Interface:rtr-edge-fra-1 TenGigabitEthernet0/0/0", "CONNECTED_TO", "Interface:sw-core-fra-1 Ethernet2"),
            ("Switch:sw-core-fra-1", "LOCATED_IN", "Location:FRA1 rack R01"),
            ("Location:FRA1 rack R01", "LOCATED_IN", "Location:FRA1 Hall 2"),
            ("Location:FRA1 Hall 2", "LOCATED_IN", "Location:FRA1"),
            ("Router:rtr-edge-fra-1", "LOCATED_IN", "Location:FRA1 Hall 2"),
            ("IPAddress:10.40.1.21", "IN_SUBNET", "Subnet:10.40.1.0/24"),
            ("IPAddress:10.40.2.11", "IN_SUBNET", "Subnet:10.40.0.0/16"),
            ("VirtualMachine:orders-app-1", "HOSTED_ON", "Cluster:vmw-fra1"),
            ("VirtualMachine:orders-app-1", "HAS_ADDRESS", "IPAddress:10.40.2.11"),
            ("Server:db-01.fra1.example.com", "OWNED_BY", "Person:Ana Lopez"),
            ("Server:db-01.fra1.example.com", "OWNED_BY", "Team:Payments"),
            ("Switch:sw-core-fra-1", "SUPPORTED_BY", "Person:NOC")} <= edges
    switches = store.search(SearchQuery(classes=["Switch"])).items
    assert len(switches) == 1  # the SNMP switch and the NetBox device are one CI
    sw = switches[0]
    assert {s for s, _ in sw.sightings} == {"snmp", "import:netbox"}
    assert sw.attrs["os"] == "EOS 4.31" and sw.attrs["vendor"] == "Arista" and sw.attrs["role"] == "core"
    assert sw.attrs["external_ids"] == ["netbox:dcim.device:1"]
    person = next(c for c in store.search(SearchQuery(classes=["Person"], limit=10)).items if c.name == "Ana Lopez")
    assert person.attrs["email"] == "ana.lopez@example.com"
    events = len(store.events())
    again = import_netbox(store)
    assert again.totals["events"] == 0 and again.totals["created"] == 0
    assert len(store.events()) == events


def test_malformed_netbox_exports(tmp_path: Path) -> None:
    bad = tmp_path / "nb.json"
    bad.write_text('{"dcim.devices": [{"id": 1, "name": "x"}')
    with pytest.raises(BadInputError, match=r"nb\.json:1: not valid JSON"):
        read_netbox_export(bad)
    bad.write_text(json.dumps({"devices": []}))
    with pytest.raises(BadInputError, match="expected a NetBox export: an object of endpoint -> records"):
        read_netbox_export(bad)
    bad.write_text(json.dumps({"dcim.devices": [{"name": "no id"}]}))
    with pytest.raises(BadInputError, match=r"dcim\.devices must be a list of records, each with its id"):
        read_netbox_export(bad)
