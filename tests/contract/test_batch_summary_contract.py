"""What a batch reports says everything it did, and a dry run reports exactly that: the same on every store.

``IngestResult.summary()`` counts, besides CIs and relationships created and updated, the identity
keys ageing retired, the attribute values dropped, the CIs merged and the recorded conflicts closed.
``plan_batch`` (``cmdb load --dry-run``, the importers' dry runs) plans with ingest's own planner over a
read-only view: for every kind of batch its summary is the one the real ingest then answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.batch import Batch
from cmdb.dryrun import plan_batch
from cmdb.ingest import IngestResult, ingest
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NET = "10.0.0.0/24"
A, B = "10.0.0.5", "10.0.0.6"
MAC = "02:00:5e:00:00:02"
NEW_KEYS = ("keys_retired", "attrs_dropped", "rel_attrs_dropped", "merged", "conflicts_closed")


def load(store: GraphStore, doc: dict[str, Any], at: int = 0) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=T0 + timedelta(hours=at))


def server(**attrs: Any) -> dict[str, Any]:
    return {"class": "Server", **attrs}


def test_one_batch_that_ages_a_key_drops_a_value_and_merges_two_cis_reports_each(store: GraphStore) -> None:
    load(store, {"source": "snmp", "scope": NET, "complete": True,
                 "cis": [server(serial_number="S1", management_ip=A, model="c9300")]})
    first = load(store, {"source": "import", "cis": [server(fqdn="f2.example.com", hostname="h2")]}, at=1)
    load(store, {"source": "ssh", "cis": [server(mac_addresses=[MAC], os="linux")]}, at=2)
    assert first.summary()["merged"] == 0 and all(first.summary()[k] == 0 for k in NEW_KEYS)
    one, two = store.find_by_key("device:fqdn=f2.example.com"), store.find_by_key(f"device:mac_addresses={MAC}")
    assert one is not None and two is not None and one != two
    res = load(store, {"source": "snmp", "scope": NET, "complete": True, "cis": [
        server(serial_number="S1", management_ip=B),  # the IP moved (key A retired), the model is no longer said
        server(serial_number="S2", fqdn="f2.example.com", mac_addresses=[MAC]),  # ties the import's and ssh's CI
    ]}, at=3)
    s = res.summary()
    assert (s["keys_retired"], s["attrs_dropped"], s["merged"], s["conflicts"]) == (1, 1, 1, 0), s
    assert s["created"] == 0 and s["updated"] == 2
    kinds = [e.kind for e in store.events() if e.run_id == res.run_id]
    assert (kinds.count("ci.key.retired"), kinds.count("ci.attr.dropped"), kinds.count("ci.merged")) == (1, 1, 1)
    assert store.find_by_key("device:fqdn=f2.example.com") == store.find_by_key(f"device:mac_addresses={MAC}")
    run = next(r for r in store.runs(source="snmp") if r.run_id == res.run_id)
    assert {k: run.stats[k] for k in NEW_KEYS} == {k: s[k] for k in NEW_KEYS}  # the run ledger says it too


def test_a_closed_conflict_and_a_dropped_relationship_value_are_counted(store: GraphStore) -> None:
    snmp = {"source": "snmp", "scope": NET}
    load(store, {**snmp, "complete": True, "cis": [server(serial_number="S1", management_ip=A)]})
    load(store, {"source": "import", "cis": [server(serial_number="S2", hostname="h2")]}, at=1)
    opened = load(store, {**snmp, "complete": False, "cis": [server(serial_number="S2", management_ip=A)]}, at=2)
    assert len(opened.conflicts) == 1
    closed = load(store, {**snmp, "complete": True, "cis": [
        server(ref="a", serial_number="S1", management_ip=B), server(ref="b", serial_number="S2", management_ip=A)],
        "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": {"port": "Gi0/1"}}]}, at=3)
    assert closed.summary()["conflicts_closed"] == 1 and store.conflicts() == []
    dropped = load(store, {**snmp, "complete": False, "cis": [
        server(ref="a", serial_number="S1"), server(ref="b", serial_number="S2")],
        "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": {"port": None}}]}, at=4)
    assert dropped.summary()["rel_attrs_dropped"] == 1 and dropped.summary()["attrs_dropped"] == 0


# -- dry runs ----------------------------------------------------------------------------------------
def batches() -> list[tuple[str, dict[str, Any]]]:
    """(what it is, the batch): each builds on the ones before it."""
    return [
        ("plain create", {"source": "import", "cis": [
            {"ref": "w", "class": "Server", "hostname": "web-1", "serial_number": "W1", "os": "debian"},
            {"ref": "p", "class": "Person", "email": "ops@example.com"}],
            "relationships": [{"type": "OWNED_BY", "from": "w", "to": "p"}]}),
        ("update", {"source": "import", "cis": [server(hostname="web-1", serial_number="W1", os="ubuntu")]}),
        ("setup: a box seen by fqdn", {"source": "import", "cis": [server(fqdn="db.example.com", hostname="db")]}),
        ("setup: the same box by mac", {"source": "ssh", "cis": [server(mac_addresses=[MAC], os="linux")]}),
        ("merge", {"source": "ssh", "cis": [server(fqdn="db.example.com", mac_addresses=[MAC], serial_number="D1",
                                                   cpu_count=4)]}),
        ("setup: a second serial", {"source": "import", "cis": [server(serial_number="X9", fqdn="x9.example.com")]}),
        # ties the merged box (serial D1) and X9: two serials, a conflict, nothing written
        ("true conflict", {"source": "scan", "cis": [server(mac_addresses=[MAC], fqdn="x9.example.com")]}),
        ("ageing", {"source": "snmp", "scope": NET, "complete": True,
                    "cis": [server(serial_number="W1", management_ip=A, model="r640")]}),
        ("ageing again", {"source": "snmp", "scope": NET, "complete": True,
                          "cis": [server(serial_number="W1", management_ip=B)]}),
        ("retire", {"source": "manual", "retire": {"cis": [{"class": "Server", "serial_number": "X9"}]}}),
    ]


def test_a_dry_run_reports_what_the_real_ingest_then_does(store: GraphStore) -> None:
    config = ReconcileConfig()
    seen: dict[str, dict[str, int]] = {}
    for hour, (what, doc) in enumerate(batches()):
        doc = {**doc, "run_id": f"run-{hour}"}
        now = T0 + timedelta(hours=hour)
        schema = store_schema(store)
        before = list(store.dump())
        plan = plan_batch(store, Batch.from_dict(doc), schema=schema, config=config, now=now)
        assert list(store.dump()) == before, f"{what}: the dry run wrote"
        real = ingest(store, Batch.from_dict(doc), schema=schema, config=config, now=now)
        want = real.summary()
        assert plan.summary == want, (what, plan.summary, want)
        assert (plan.rels_created, plan.rels_updated, plan.events) == (want["rels_created"], want["rels_updated"],
                                                                       want["events"]), what
        seen[what] = want
        if what == "merge":  # the item ties two CIs that agree: an update merging them, as ingest did it
            (item,) = plan.items
            assert item.action == "update" and len(item.merged) == 1, item
            assert store.get_ci(item.merged[0]) is not None and store.resolve_alias(item.merged[0]) == item.ci_id
        if what == "true conflict":
            (item,) = plan.items
            assert item.action == "conflict" and len(item.conflict_ids) == 2, item
    assert seen["plain create"]["created"] == 2 and seen["plain create"]["rels_created"] == 1
    assert seen["update"]["updated"] == 1
    assert seen["merge"]["merged"] == 1 and seen["merge"]["conflicts"] == 0
    assert seen["true conflict"]["conflicts"] == 1 and seen["true conflict"]["merged"] == 0
    assert seen["ageing again"]["keys_retired"] == 1 and seen["ageing again"]["attrs_dropped"] == 1
    assert seen["retire"]["retired"] == 1
