"""A relationship's provenance read back whole (``get_rels``), and batch plans over a read-only view
(``plan_read_only``): the same on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import NotFoundError
from cmdb.ingest import IngestResult, ingest
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.rel_provenance import find_rel, find_rel_between, rel_provenance
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore, iso

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NET = "10.0.0.0/24"


def load(store: GraphStore, doc: dict[str, Any], at: int = 0) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=T0 + timedelta(hours=at))


def linked(source: str, attrs: dict[str, Any], complete: bool = False) -> dict[str, Any]:
    return {"source": source, "scope": NET, "complete": complete,
            "cis": [{"ref": "a", "class": "Server", "serial_number": "S1"},
                    {"ref": "b", "class": "Switch", "serial_number": "SW1"}],
            "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": attrs}]}


def ends(store: GraphStore) -> tuple[str, str]:
    a, b = store.find_by_key("device:serial_number=s1"), store.find_by_key("device:serial_number=sw1")
    assert a is not None and b is not None
    return a, b


def test_get_rels_reads_a_relationship_with_every_sources_values_and_sightings(store: GraphStore) -> None:
    load(store, linked("snmp", {"port": "Gi0/1"}))
    load(store, linked("scan", {"port": "eth0", "vlan": 10}), at=1)
    a, b = ends(store)
    listed = store.relationships(a, type="CONNECTED_TO")
    assert len(listed) == 1
    rel = store.get_rels([listed[0].id, "rel-no-such-thing"])[listed[0].id]
    assert store.get_rels(["rel-no-such-thing"]) == {} and store.get_rels([]) == {}
    assert (rel.type, rel.src, rel.dst, rel.attrs) == ("CONNECTED_TO", a, b, {"port": "Gi0/1", "vlan": 10})
    assert rel.provenance is not None
    assert {s: v.value for s, v in rel.provenance["port"].items()} == {"snmp": "Gi0/1", "scan": "eth0"}
    assert {s: v.set_at for s, v in rel.provenance["vlan"].items()} == {"scan": iso(T0 + timedelta(hours=1))}
    assert {(s.source, s.last_seen) for s in rel.sightings.values()} == {
        ("snmp", iso(T0)), ("scan", iso(T0 + timedelta(hours=1)))}
    assert find_rel(store, rel.id).id == rel.id == find_rel_between(store, "CONNECTED_TO", a, b).id

    view = rel_provenance(rel, ReconcileConfig(), now=T0 + timedelta(hours=2))
    port = view.attributes["port"]
    assert (port.value, port.source) == ("Gi0/1", "snmp")  # snmp outranks scan
    assert [(v.source, v.value, v.last_seen, v.current) for v in port.sources] == [
        ("snmp", "Gi0/1", iso(T0), True), ("scan", "eth0", iso(T0 + timedelta(hours=1)), False)]
    vlan = view.attributes["vlan"]
    assert (vlan.value, vlan.source, [v.current for v in vlan.sources]) == (10, "scan", [True])
    doc = view.to_dict()
    assert (doc["from"], doc["to"], doc["attributes"]["port"]["sources"][1]["source"]) == (a, b, "scan")


def test_a_withdrawn_value_leaves_the_provenance_and_the_next_source_is_current(store: GraphStore) -> None:
    load(store, linked("snmp", {"port": "Gi0/1"}))
    load(store, linked("scan", {"port": "eth0"}), at=1)
    load(store, linked("snmp", {"port": None}), at=2)
    a, b = ends(store)
    view = rel_provenance(find_rel_between(store, "CONNECTED_TO", a, b), now=T0 + timedelta(hours=3))
    port = view.attributes["port"]
    assert (port.value, port.source) == ("eth0", "scan")
    assert [(v.source, v.current) for v in port.sources] == [("scan", True)]
    # snmp still sees the relationship: its sighting is there, its value is not
    assert {s.source for s in view.sightings} == {"snmp", "scan"}


def test_a_retired_relationship_is_still_read_and_a_missing_one_is_not_found(store: GraphStore) -> None:
    load(store, linked("manual", {"port": "Gi0/2"}))
    a, b = ends(store)
    load(store, {"source": "manual", "retire": {"relationships": [
        {"type": "CONNECTED_TO", "from": {"class": "Server", "serial_number": "S1"},
         "to": {"class": "Switch", "serial_number": "SW1"}}]}}, at=1)
    rel = find_rel_between(store, "CONNECTED_TO", a, b)
    assert rel.status == "retired" and rel.attrs == {"port": "Gi0/2"}
    with pytest.raises(NotFoundError):
        find_rel_between(store, "DEPENDS_ON", a, b)
    with pytest.raises(NotFoundError):
        find_rel(store, "rel-0000")


def test_plan_read_only_plans_what_a_write_would_and_writes_nothing(store: GraphStore) -> None:
    load(store, linked("snmp", {"port": "Gi0/1"}))
    schema = store_schema(store)
    before = (store.stats(), store.write_counter(), [r.run_id for r in store.runs()], list(store.dump()))
    doc = {**linked("scan", {"port": "eth0"}), "cis": [
        {"ref": "a", "class": "Server", "serial_number": "S1", "os": "linux"},
        {"ref": "b", "class": "Switch", "serial_number": "SW1"},
        {"class": "Server", "serial_number": "S2"}], "run_id": "probe-1"}
    now = T0 + timedelta(hours=1)
    planner = Planner(schema, ReconcileConfig(), Batch.from_dict(doc), now)
    planner.prepare()
    planned = store.plan_read_only(planner.plan)
    assert (len(planned.cis_new), len(planned.rels_changed)) == (1, 1) and planned.cis_changed
    assert planner.result.summary()["created"] == 1
    assert (store.stats(), store.write_counter(), [r.run_id for r in store.runs()], list(store.dump())) == before
    real = ingest(store, Batch.from_dict(doc), schema=schema, now=now)
    assert real.summary() == {**planner.result.summary(), "events": len(planned.events)}
