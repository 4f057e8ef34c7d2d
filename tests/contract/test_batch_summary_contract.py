"""What a batch reports says everything it did: the same on every store.

``IngestResult.summary()`` counts, besides CIs and relationships created and updated, the identity
keys ageing retired, the attribute values dropped, the CIs merged and the recorded conflicts closed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import IngestResult, ingest
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

