"""Keys and attributes that age out, relationship attributes per source: the same on every store.

What a source stops saying in a complete run over a scope that covers the CI stops counting: its
identity keys (a moved IP identifies the new box, not the old one) and its attribute values (the
next source's value takes over, or the attribute is cleared). Partial runs change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import IngestResult, ingest
from cmdb.migrate import compare_stores, migrate
from cmdb.store.base import BatchReader, ChangeSet, GraphStore, RunRecord, iso
from cmdb.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NET = "10.0.0.0/24"
A, B = "10.0.0.5", "10.0.0.6"


def load(store: GraphStore, doc: dict[str, Any], at: int = 0) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=T0 + timedelta(hours=at))


def snmp(*hosts: dict[str, Any], complete: bool = True, scope: str = NET) -> dict[str, Any]:
    return {"source": "snmp", "scope": scope, "complete": complete,
            "cis": [{"class": "Server", **h} for h in hosts]}


def key(attr: str, value: str) -> str:
    return f"device:{attr}={value.lower()}"


def kinds(store: GraphStore, ci_id: str) -> list[str]:
    return [e.kind for e in store.events([ci_id])]


def only_ci(store: GraphStore, serial: str) -> str:
    found = store.find_by_key(key("serial_number", serial))
    assert found is not None
    return found


# -- identity keys -----------------------------------------------------------------------------------
def test_ip_moved_to_a_new_host_across_two_complete_runs_is_two_cis_without_conflict(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "hostname": "h1", "management_ip": A}))
    old = only_ci(store, "S1")
    # The IP moves to a new box, the old box gets another one: one complete run sees both.
    res = load(store, snmp({"serial_number": "S1", "hostname": "h1", "management_ip": B},
                           {"serial_number": "S2", "hostname": "h2", "management_ip": A}), at=1)
    assert res.conflicts == [] and res.created == 1
    new = only_ci(store, "S2")
    assert new != old
    assert store.find_by_key(key("management_ip", A)) == new
    assert store.find_by_key(key("management_ip", B)) == old
    cis = store.get_cis([old, new])
    assert cis[old].attrs["management_ip"] == B and cis[old].attrs["serial_number"] == "S1"
    assert cis[new].attrs["management_ip"] == A and cis[new].attrs["hostname"] == "h2"
    assert store.conflicts() == []
    retired = [e for e in store.events([old]) if e.kind == "ci.key.retired"]
    assert [(e.attr, e.old, e.source) for e in retired] == [("management_ip", key("management_ip", A), "snmp")]


def test_a_retired_key_lets_a_later_box_with_that_ip_be_a_new_ci(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "management_ip": A}))
    old = only_ci(store, "S1")
    load(store, snmp({"serial_number": "S1", "management_ip": B}), at=1)  # the IP moved
    assert store.find_by_key(key("management_ip", A)) is None
    res = load(store, snmp({"serial_number": "S1", "management_ip": B},
                           {"serial_number": "S2", "management_ip": A}), at=2)
    assert res.created == 1 and res.conflicts == []
    assert store.find_by_key(key("management_ip", A)) == only_ci(store, "S2") != old


def test_a_key_another_source_still_reports_keeps_identifying_the_ci(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "management_ip": A}))
    old = only_ci(store, "S1")
    load(store, {"source": "import", "cis": [{"class": "Server", "serial_number": "S1", "management_ip": A}]}, at=1)
    load(store, snmp({"serial_number": "S1", "management_ip": B}), at=2)
    assert store.find_by_key(key("management_ip", A)) == old  # the import still says so
    assert store.find_by_key(key("management_ip", B)) == old


def test_partial_runs_retire_no_key_and_drop_no_attribute(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "management_ip": A, "os": "ios", "model": "c9300"}))
    ci = only_ci(store, "S1")
    before = store.get_ci(ci)
    assert before is not None
    load(store, snmp({"serial_number": "S1", "management_ip": A}, complete=False), at=1)
    after = store.get_ci(ci)
    assert after is not None and after.attrs == before.attrs and after.provenance == before.provenance
    load(store, snmp({"serial_number": "S1", "management_ip": B}, complete=False), at=2)
    assert store.find_by_key(key("management_ip", A)) == ci  # a partial run retires nothing
    assert "ci.key.retired" not in kinds(store, ci) and "ci.attr.dropped" not in kinds(store, ci)


def test_a_conflict_whose_cause_retired_is_closed(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "management_ip": A}))
    load(store, {"source": "import", "cis": [{"class": "Server", "serial_number": "S2", "hostname": "h2"}]}, at=1)
    one, two = only_ci(store, "S1"), only_ci(store, "S2")
    # A partial look says the box with serial S2 has A: A still points at the first CI -> conflict.
    res = load(store, snmp({"serial_number": "S2", "management_ip": A}, complete=False), at=2)
    assert len(res.conflicts) == 1 and sorted(store.conflicts()[0].ci_ids) == sorted([one, two])
    # The complete run places A on S2 and B on S1: the conflict's cause is gone.
    res = load(store, snmp({"serial_number": "S1", "management_ip": B},
                           {"serial_number": "S2", "management_ip": A}), at=3)
    assert res.conflicts == [] and res.created == 0
    assert store.conflicts() == [] and store.stats()["conflicts"] == 0  # no longer open: kept, as closed
    (closed_one,) = store.conflicts("closed")
    assert (closed_one.state, closed_one.closed_at, closed_one.closed_run, closed_one.closed_by) == (
        "closed", iso(T0 + timedelta(hours=3)), res.run_id, "snmp")
    assert key("management_ip", A) in (closed_one.closed_reason or "")
    assert store.find_by_key(key("management_ip", A)) == two
    closed = [e for e in store.events([one, two]) if e.kind == "conflict.closed"]
    assert len(closed) == 1 and sorted([closed[0].ci_id, closed[0].peer_id]) == sorted([one, two])


def test_an_item_that_takes_a_vanished_boxs_ip_takes_the_key_and_the_value(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "management_ip": A}))
    load(store, {"source": "import", "cis": [{"class": "Server", "serial_number": "S2"}]}, at=1)
    one, two = only_ci(store, "S1"), only_ci(store, "S2")
    # S1 is gone from this run; S2 now answers on A: no conflict, A is S2's.
    res = load(store, snmp({"serial_number": "S2", "management_ip": A}), at=2)
    assert res.conflicts == [] and store.conflicts() == []
    assert store.find_by_key(key("management_ip", A)) == two
    first = store.get_ci(one)
    assert first is not None and "management_ip" not in first.attrs


# -- attributes --------------------------------------------------------------------------------------
def test_an_attribute_a_source_drops_is_cleared_or_falls_back(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "os": "ios", "model": "c9300", "vendor": "Cisco"}))
    ci = only_ci(store, "S1")
    load(store, {"source": "scan", "cis": [{"class": "Server", "serial_number": "S1", "os": "Linux"}]}, at=1)
    state = store.get_ci(ci)
    assert state is not None and state.attrs["os"] == "ios"  # snmp outranks scan
    load(store, snmp({"serial_number": "S1", "vendor": "Cisco"}), at=2)
    state = store.get_ci(ci)
    assert state is not None
    assert state.attrs["os"] == "Linux"  # the next source's value
    assert "model" not in state.attrs  # nobody else said it: cleared
    assert "snmp" not in state.provenance["os"] and "model" not in state.provenance
    at = iso(T0 + timedelta(hours=2))
    events = [(e.kind, e.attr, e.old, e.new, e.source) for e in store.events([ci]) if e.at == at]
    assert ("ci.attr.dropped", "model", "c9300", None, "snmp") in events
    assert ("ci.attr.dropped", "os", "ios", None, "snmp") in events
    assert ("ci.attr", "os", "ios", "Linux", "scan") in events
    assert ("ci.attr", "model", "c9300", None, "snmp") in events


def test_an_explicit_null_clears_the_sources_value_even_in_a_partial_run(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "os": "ios", "model": "c9300"}, complete=False))
    ci = only_ci(store, "S1")
    load(store, snmp({"serial_number": "S1", "model": None}, complete=False), at=1)
    state = store.get_ci(ci)
    assert state is not None and "model" not in state.attrs and state.attrs["os"] == "ios"


def test_a_complete_run_over_another_scope_drops_nothing(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "os": "ios"}, scope="10.0.0.5"))
    ci = only_ci(store, "S1")
    # The same source's complete run over a scope that does not cover 10.0.0.5 (a dependency map).
    load(store, snmp({"serial_number": "S1"}, scope="depmap:10.0.0.5"), at=1)
    state = store.get_ci(ci)
    assert state is not None and state.attrs["os"] == "ios"
    load(store, snmp({"serial_number": "S1"}, scope=NET), at=2)  # a run over the covering subnet
    state = store.get_ci(ci)
    assert state is not None and "os" not in state.attrs


# -- relationship attributes -------------------------------------------------------------------------
def linked(source: str, attrs: dict[str, Any], complete: bool = False) -> dict[str, Any]:
    return {"source": source, "scope": NET, "complete": complete,
            "cis": [{"ref": "a", "class": "Server", "serial_number": "S1"},
                    {"ref": "b", "class": "Switch", "serial_number": "SW1"}],
            "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": attrs}]}


def the_rel(store: GraphStore) -> Any:
    rels = store.relationships(only_ci(store, "S1"), type="CONNECTED_TO")
    assert len(rels) == 1
    return rels[0]


def test_two_sources_on_one_relationship_attribute(store: GraphStore) -> None:
    load(store, linked("snmp", {"port": "Gi0/1"}))
    load(store, linked("scan", {"port": "eth0", "vlan": 10}), at=1)
    assert the_rel(store).attrs == {"port": "Gi0/1", "vlan": 10}  # snmp outranks scan; scan adds vlan
    load(store, linked("scan", {"port": "eth1", "vlan": 10}), at=2)  # the weaker source updates its own value
    assert the_rel(store).attrs == {"port": "Gi0/1", "vlan": 10}
    load(store, linked("scan", {"port": "eth1"}), at=2)  # a partial run without vlan drops nothing
    assert the_rel(store).attrs == {"port": "Gi0/1", "vlan": 10}
    load(store, linked("snmp", {"port": None}), at=3)  # snmp withdraws its value: scan's latest shows
    rel = the_rel(store)
    assert rel.attrs == {"port": "eth1", "vlan": 10}
    load(store, linked("scan", {"port": "eth1"}, complete=True), at=4)  # a complete run without vlan
    rel = the_rel(store)
    assert rel.attrs == {"port": "eth1"}
    events = [(e.kind, e.attr, e.old, e.new) for e in store.events([rel.src]) if e.rel_id == rel.id]
    assert ("rel.attr", "port", "Gi0/1", "eth1") in events
    assert ("rel.attr.dropped", "vlan", 10, None) in events and ("rel.attr", "vlan", 10, None) in events


def test_a_stale_stronger_source_gives_way_on_a_relationship(store: GraphStore) -> None:
    load(store, linked("snmp", {"port": "Gi0/1"}))
    load(store, linked("scan", {"port": "eth0"}), at=24 * 30)  # snmp has not seen it for a month
    assert the_rel(store).attrs == {"port": "eth0"}


def test_relationship_provenance_moves_with_a_migration(store: GraphStore, tmp_path: Path) -> None:
    load(store, linked("snmp", {"port": "Gi0/1"}))
    load(store, linked("scan", {"port": "eth0"}), at=1)
    copy = SqliteStore(tmp_path / "copy.db")
    try:
        migrate(store, copy)
        assert compare_stores(store, copy) == []
        assert any(kind == "rel_prov" for kind, _ in copy.dump())
        load(copy, linked("snmp", {"port": None}), at=2)  # the copy still knows scan's value
        rels = copy.relationships(type="CONNECTED_TO")
        assert [r.attrs for r in rels] == [{"port": "eth0"}]
    finally:
        copy.close()


# -- the reader's look-ups ---------------------------------------------------------------------------
def test_the_batch_reader_finds_run_scopes_and_conflicts_by_key(store: GraphStore) -> None:
    load(store, snmp({"serial_number": "S1", "management_ip": A}))
    load(store, {"source": "import", "cis": [{"class": "Server", "serial_number": "S2"}]}, at=1)
    load(store, snmp({"serial_number": "S2", "management_ip": A}, complete=False), at=2)
    run_id = store.runs(source="snmp", limit=10)[-1].run_id
    seen: dict[str, Any] = {}

    def plan(reader: BatchReader) -> ChangeSet:
        seen["scopes"] = reader.run_scopes([run_id, "no-such-run"])
        seen["hit"] = reader.open_conflicts([key("management_ip", A)])
        seen["miss"] = reader.open_conflicts([key("management_ip", B)])
        at = iso(T0)
        return ChangeSet(run=RunRecord("reader-probe", "manual", None, False, at, at))

    store.write_batch(plan)
    assert seen["scopes"] == {run_id: NET}
    assert [c.keys for c in seen["hit"]] == [store.conflicts()[0].keys] and seen["miss"] == []
