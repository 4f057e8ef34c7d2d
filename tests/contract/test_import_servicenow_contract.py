"""ServiceNow exports on every store: classes and relationship types mapped, sys_id as an external key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore, SearchQuery
from importers.servicenow import load_snow_map, read_export, transform_servicenow
from importers.table_import import ImportReport, import_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "servicenow"
FILES = [DATA / "cmdb_ci_export.json", DATA / "cmdb_rel_ci.csv"]


def import_snow(store: GraphStore, extra_map: Path | None = None, batch_size: int = 5000) -> tuple[ImportReport,
                                                                                                    list[str]]:
    schema = default_schema()
    cis, rels = read_export(FILES)
    reading = transform_servicenow(cis, rels, load_snow_map(schema, extra_map), schema, batch_size=batch_size)
    report = import_batches(store, list(zip(reading.labels, reading.batches, strict=True)),
                            ImportReport("export", "import:servicenow"), schema=schema, config=ReconcileConfig())
    return report, reading.notes


def names(store: GraphStore) -> dict[str, str]:
    page = store.search(SearchQuery(limit=200))
    return {c.id: f"{c.cls}:{c.name}" for c in page.items}


def edges(store: GraphStore) -> set[tuple[str, str, str]]:
    n = names(store)
    return {(n[r.src], r.type, n[r.dst]) for r in store.relationships(limit=500)}


@pytest.mark.parametrize("batch_size", [5000, 3])  # one batch (refs), or CI batches then relationship batches
def test_export_maps_classes_and_relationships_and_reimport_changes_nothing(store: GraphStore,
                                                                             batch_size: int) -> None:
    report, notes = import_snow(store, batch_size=batch_size)
    assert report.totals["conflicts"] == 0
    assert sorted(names(store).values()) == [
        "Application:orders-api", "Cluster:web-pool", "Database:orders-db", "Person:None", "Person:None",
        "Server:DB-01", "Server:web-01", "Server:web-02", "Service:Online Orders", "Team:DBA Team",
        "Team:Linux Ops"]
    e = edges(store)
    assert {("Service:Online Orders", "DEPENDS_ON", "Application:orders-api"),
            ("Application:orders-api", "RUNS_ON", "Server:web-01"),
            ("Database:orders-db", "HOSTED_ON", "Server:DB-01"),
            ("Server:web-01", "MEMBER_OF", "Cluster:web-pool"),  # Members::Member of, reversed
            ("Server:web-01", "CONNECTED_TO", "Server:DB-01"),
            ("Server:DB-01", "SUPPORTED_BY", "Team:DBA Team")} <= e
    assert len([x for x in e if x[1] == "OWNED_BY"]) == 6
    assert any("'u_cmdb_ci_coffee' is not in the ServiceNow map" in n for n in notes)
    assert any("'Owns::Owned by' is not in the ServiceNow map" in n for n in notes)
    web01 = store.get_ci(store.find_by_key("device:serial_number=vmw-4211-01") or "")
    assert web01 is not None
    assert web01.attrs["external_ids"] == ["servicenow:9e795e3c83f0a95aee9e9cd5928adc56"]
    assert (web01.attrs["hostname"], web01.attrs["memory_mb"], web01.attrs["management_ip"]) == (
        "web-01", 8192, "10.30.0.11")
    service = next(c for c in store.search(SearchQuery(classes=["Service"])).items)
    assert (service.attrs["tier"], service.attrs["service_type"]) == (1, "business")
    events = len(store.events())
    again, _ = import_snow(store, batch_size=batch_size)
    assert again.totals["events"] == 0 and again.totals["created"] == 0
    assert len(store.events()) == events


def test_servicenow_ci_merges_with_discovery_and_the_map_is_extendable(store: GraphStore, tmp_path: Path) -> None:
    ingest(store, Batch.from_dict({"source": "ssh", "cis": [
        {"class": "Server", "hostname": "db-01", "serial_number": "CZ2033AB7", "os": "Debian GNU/Linux 12"}]}))
    extra = tmp_path / "mine.yaml"
    extra.write_text("classes:\n  u_cmdb_ci_coffee: {class: Printer}\n"
                     "relationships:\n  \"Sends data to::Receives data from\": {type: DEPENDS_ON}\n")
    report, notes = import_snow(store, extra)
    assert report.totals["conflicts"] == 0
    hosts = store.search(SearchQuery(classes=["Server"])).items
    db = [h for h in hosts if h.attrs.get("serial_number") == "CZ2033AB7"]
    assert len(db) == 1 and db[0].attrs["os"] == "Debian GNU/Linux 12"  # ssh outranks import
    assert {s for s, _ in db[0].sightings} == {"ssh", "import:servicenow"}
    assert ("Service:Online Orders", "DEPENDS_ON", "Printer:Coffee machine") in edges(store)
    assert not any("coffee" in n for n in notes)


def test_bad_map_and_malformed_export(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  cmdb_ci_toaster: {class: Toaster}\n")
    with pytest.raises(BadInputError, match=r"classes\.cmdb_ci_toaster: 'Toaster' is not a concrete class"):
        load_snow_map(default_schema(), bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"records": [{"sys_id": "1", "name": "x",}]}')
    with pytest.raises(BadInputError, match=r"broken\.json:1: not valid JSON: Expecting property name"):
        read_export([broken])
    nosys = tmp_path / "cis.csv"
    nosys.write_text("name,serial_number\nx,1\n")
    with pytest.raises(BadInputError, match=r"cis\.csv:2: no sys_id column"):
        read_export([nosys])
