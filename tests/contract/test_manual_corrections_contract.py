"""Manual corrections through ``ingest``: set, retire, and complete manual batches, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError, NotFoundError
from cmdb.ingest import IngestResult, ingest
from cmdb.manual import retire_ci, retire_relationship, set_attributes
from cmdb.model import default_schema
from cmdb.store.base import GraphStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SVC = {"class": "Service", "service_type": "business", "tier": 2}
MANUAL = {
    "source": "manual", "scope": "inventory", "complete": True,
    "cis": [{"ref": "shop", **SVC, "name": "shop"}, {"ref": "pay", **SVC, "name": "payments"},
            {"ref": "db", "class": "Server", "serial_number": "DB-1", "hostname": "db1"}],
    "relationships": [{"type": "DEPENDS_ON", "from": "shop", "to": "pay"},
                      {"type": "DEPENDS_ON", "from": "shop", "to": "db"}],
}


def load(store: GraphStore, doc: dict[str, Any], now: datetime = T0) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=now)


def status(store: GraphStore, name: str) -> str:
    ci = store.get_ci(store.find_by_name(name)[0])
    assert ci is not None
    return ci.status


def rel_statuses(store: GraphStore) -> dict[tuple[str, str], str]:
    names = {c.id: c.name for c in store.get_cis({i for r in store.relationships(include_retired=True)
                                                  for i in (r.src, r.dst)}).values()}
    return {(str(names[r.src]), str(names[r.dst])): r.status for r in store.relationships(include_retired=True)}


def test_set_is_typed_reconciled_and_in_history(store: GraphStore) -> None:
    load(store, {"source": "ssh", "cis": [{"class": "Server", "serial_number": "DB-1", "hostname": "db1",
                                           "cpu_count": 4}]})
    ci_id = store.find_by_name("db1")[0]
    res = set_attributes(store, default_schema(), ci_id, ["cpu_count=8", "ip_addresses=10.0.0.2,10.0.0.1",
                                                          "environment=production"], actor="ann")
    assert res.updated == 1
    ci = store.get_ci(ci_id)
    assert ci is not None
    assert ci.attrs["cpu_count"] == 8  # an int, and manual outranks ssh
    assert ci.attrs["ip_addresses"] == ["10.0.0.1", "10.0.0.2"]
    assert ci.provenance["cpu_count"]["ssh"].value == 4  # the collector's value is kept as an alternative
    events = [(e.attr, e.old, e.new, e.source, e.actor) for e in store.events([ci_id]) if e.kind == "ci.attr"]
    assert ("cpu_count", 4, 8, "manual", "ann") in events
    with pytest.raises(BadInputError) as bad:
        set_attributes(store, default_schema(), ci_id, ["cpu_count=eight", "colour=red", "memory_mb"])
    text = str(bad.value)  # every problem at once
    assert "expected an integer, got 'eight'" in text and "'colour' is not an attribute" in text
    assert "'memory_mb': expected attr=value" in text


def test_a_relationship_entered_by_mistake_can_be_retired_and_comes_back_only_by_hand(store: GraphStore) -> None:
    load(store, {**MANUAL, "complete": False, "scope": None})
    shop, db = store.find_by_name("shop")[0], store.find_by_name("db1")[0]
    res = retire_relationship(store, default_schema(), shop, "DEPENDS_ON", db, actor="ann")
    assert res.rels_updated == 1
    assert rel_statuses(store) == {("shop", "payments"): "active", ("shop", "db1"): "retired"}
    assert [r.dst for r in store.neighbors([shop], ["DEPENDS_ON"])] == [store.find_by_name("payments")[0]]
    ev = [e for e in store.events([shop]) if e.kind == "rel.status"]
    assert [(e.old, e.new, e.source, e.actor) for e in ev] == [("active", "retired", "manual", "ann")]
    # A collector still reporting it does not bring it back: the manual word is final ...
    load(store, {"source": "ssh", "cis": [{"ref": "d", "class": "Server", "serial_number": "DB-1"}],
                 "relationships": [{"type": "DEPENDS_ON", "from": {"class": "Service", "name": "shop"}, "to": "d"}]},
         T0 + timedelta(hours=1))
    assert rel_statuses(store)[("shop", "db1")] == "retired"
    # ... until a manual batch describes it again.
    load(store, {**MANUAL, "complete": False, "scope": None}, T0 + timedelta(hours=2))
    assert rel_statuses(store)[("shop", "db1")] == "active"
    with pytest.raises(NotFoundError, match="no RUNS_ON relationship"):
        retire_relationship(store, default_schema(), shop, "RUNS_ON", db)


def test_retire_ci_retires_its_relationships(store: GraphStore) -> None:
    load(store, {**MANUAL, "complete": False})
    res = retire_ci(store, default_schema(), store.find_by_name("payments")[0], actor="ann")
    assert (res.retired, res.rels_updated) == (1, 1)
    assert status(store, "payments") == "retired"
    assert rel_statuses(store) == {("shop", "payments"): "retired", ("shop", "db1"): "active"}


def test_a_complete_manual_batch_retires_what_it_no_longer_holds(store: GraphStore) -> None:
    load(store, MANUAL)
    load(store, {"source": "ssh", "cis": [{"class": "Server", "serial_number": "DB-1", "os": "Debian"}]})
    smaller = {**MANUAL, "cis": MANUAL["cis"][:1] + MANUAL["cis"][2:2],
               "relationships": []}
    res = load(store, smaller, T0 + timedelta(hours=1))  # shop only: payments, db1 and both edges are gone
    assert res.retired == 1  # payments: only the manual batch knew it
    assert status(store, "payments") == "retired"
    assert status(store, "db1") == "active"  # withdrawn by hand, still seen by ssh: ssh decides
    assert set(rel_statuses(store).values()) == {"retired"}
    other_scope = {"source": "manual", "scope": "elsewhere", "complete": True, "cis": [{**SVC, "name": "hr"}]}
    load(store, other_scope, T0 + timedelta(hours=2))
    assert status(store, "shop") == "active"  # another scope's complete batch leaves this one alone
    load(store, MANUAL, T0 + timedelta(hours=3))
    assert status(store, "payments") == "active" and set(rel_statuses(store).values()) == {"active"}


def test_retire_section_is_for_manual_batches_and_names_existing_items(store: GraphStore) -> None:
    with pytest.raises(BadInputError, match="only a batch of source manual may retire"):
        Batch.from_dict({"source": "ssh", "retire": {"cis": [{"class": "Server", "serial_number": "X"}]}})
    with pytest.raises(BadInputError, match=r"retire\.relationships\[0\]\.to must be an identity reference"):
        Batch.from_dict({"source": "manual", "retire": {"relationships": [
            {"type": "DEPENDS_ON", "from": {"class": "Service", "name": "shop"}, "to": "db"}]}})
    round_trip = Batch.from_dict({"source": "manual", "retire": {"cis": [{"class": "Server", "serial_number": "X"}]}})
    assert Batch.from_dict(round_trip.to_dict()).retire_cis == round_trip.retire_cis
    with pytest.raises(NotFoundError, match="matches no CI"):
        load(store, {"source": "manual", "retire": {"cis": [{"class": "Server", "serial_number": "NOPE"}]}})
    load(store, {**MANUAL, "complete": False})
    before = store.stats()
    with pytest.raises(NotFoundError):  # one bad item: nothing of the batch is written
        load(store, {"source": "manual", "retire": {
            "cis": [{"class": "Service", "name": "payments"}],
            "relationships": [{"type": "DEPENDS_ON", "from": {"class": "Service", "name": "payments"},
                               "to": {"class": "Service", "name": "shop"}}]}})
    assert store.stats() == before and status(store, "payments") == "active"
