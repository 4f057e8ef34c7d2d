"""Identification, reconciliation, history, lifecycle and atomicity: the same on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError, NotFoundError, UnknownClassError
from cmdb.history import ci_as_of, history_near
from cmdb.ingest import IngestResult, ingest
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore, SearchQuery, iso

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def load(store: GraphStore, doc: dict[str, Any], now: datetime = T0,
         config: ReconcileConfig | None = None) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=now, config=config)


SNMP_VIEW = {
    "source": "snmp",
    "cis": [{"ref": "h", "class": "Server", "serial_number": "CZ1234ABC", "vendor": "Dell Inc.",
             "model": "PowerEdge R650", "mac_addresses": ["00:1A:2B:3C:4D:01", "00:1a:2b:3c:4d:02"]}],
}
SSH_VIEW = {
    "source": "ssh",
    "cis": [{"ref": "h", "class": "Server", "hostname": "web-01", "fqdn": "web-01.fra.example.com",
             "mac_addresses": ["00-1a-2b-3c-4d-02", "00:1a:2b:3c:4d:03"], "ip_addresses": ["10.0.0.5"],
             "os": "Ubuntu", "os_version": "22.04", "vendor": "Dell", "cpu_count": 16}],
}
SCAN_VIEW = {
    "source": "scan",
    "cis": [{"ref": "h", "class": "Host", "hostname": "web-01", "ip_addresses": ["10.0.0.5"], "os": "Linux"}],
}


def only_ci(store: GraphStore) -> Any:
    page = store.search(SearchQuery(limit=10))
    assert page.total == 1, [c.attrs for c in page.items]
    return page.items[0]


def test_three_sources_make_one_ci_with_provenance_and_precedence(store: GraphStore) -> None:
    load(store, SNMP_VIEW, T0)
    load(store, SSH_VIEW, T0 + timedelta(minutes=1))
    load(store, SCAN_VIEW, T0 + timedelta(minutes=2))
    ci = only_ci(store)
    assert ci.cls == "Server"  # the scan's generic Host does not coarsen it
    assert ci.attrs["serial_number"] == "CZ1234ABC"
    assert ci.attrs["mac_addresses"] == ["00:1a:2b:3c:4d:02", "00:1a:2b:3c:4d:03"]  # ssh outranks snmp
    assert ci.attrs["os"] == "Ubuntu"  # ssh outranks the scan that came later
    assert ci.attrs["vendor"] == "Dell"  # ssh outranks snmp
    assert ci.attrs["model"] == "PowerEdge R650"  # only snmp knows it
    assert ci.name == "web-01"
    full = store.get_ci(ci.id)
    assert full is not None
    assert {s for s in full.provenance["os"]} == {"ssh", "scan"}
    assert full.provenance["os"]["scan"].value == "Linux"  # the lower source's value kept as alternative
    assert full.provenance["serial_number"]["snmp"].run_id
    assert full.provenance["model"]["snmp"].set_at == iso(T0)
    assert {k[0] for k in full.sightings} == {"snmp", "ssh", "scan"}


def test_stale_higher_source_yields_to_best_fresh_value(store: GraphStore) -> None:
    cfg = ReconcileConfig(fresh_for=timedelta(days=7))
    load(store, SSH_VIEW, T0, cfg)
    load(store, SCAN_VIEW, T0 + timedelta(days=1), cfg)
    assert only_ci(store).attrs["os"] == "Ubuntu"
    load(store, SCAN_VIEW, T0 + timedelta(days=9), cfg)  # ssh has not confirmed for 9 days
    ci = only_ci(store)
    assert ci.attrs["os"] == "Linux"
    change = [e for e in store.events([ci.id]) if e.attr == "os" and e.kind == "ci.attr"]
    assert [(e.old, e.new, e.source) for e in change] == [("Ubuntu", "Linux", "scan")]
    load(store, SSH_VIEW, T0 + timedelta(days=10), cfg)  # ssh is back: its value wins again
    assert only_ci(store).attrs["os"] == "Ubuntu"


def _link_view(source: str, protocol: str) -> dict[str, Any]:
    return {"source": source, "scope": "lab", "cis": [
        {"ref": "a", "class": "Interface", "device_name": "sw1", "if_name": "GigabitEthernet1/0/1"},
        {"ref": "b", "class": "Interface", "device_name": "sw2", "if_name": "Ethernet1"}],
        "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": {"protocol": protocol}}]}


def test_two_sources_disagreeing_on_a_relationship_attribute_do_not_flip_it(store: GraphStore) -> None:
    cfg = ReconcileConfig(fresh_for=timedelta(days=7))
    load(store, _link_view("snmp", "lldp"), T0, cfg)
    load(store, _link_view("ssh", "cdp+lldp"), T0 + timedelta(hours=1), cfg)  # ssh outranks snmp
    [rel] = store.relationships(type="CONNECTED_TO")
    assert rel.attrs == {"protocol": "cdp+lldp"}
    for hour in (2, 3):  # both keep running: nothing changes
        assert load(store, _link_view("snmp", "lldp"), T0 + timedelta(hours=hour), cfg).events == 0
        assert load(store, _link_view("ssh", "cdp+lldp"), T0 + timedelta(hours=hour, minutes=30), cfg).events == 0
    assert store.relationships(type="CONNECTED_TO")[0].attrs == {"protocol": "cdp+lldp"}
    load(store, _link_view("snmp", "lldp"), T0 + timedelta(days=9), cfg)  # ssh silent for 9 days: snmp's turn
    assert store.relationships(type="CONNECTED_TO")[0].attrs == {"protocol": "lldp"}


def test_items_sharing_a_key_in_one_batch_are_merged(store: GraphStore) -> None:
    doc = {"source": "snmp", "cis": [
        {"class": "Switch", "serial_number": "FOC1", "mac_addresses": ["aa:aa:aa:aa:aa:01"]},
        {"class": "Switch", "hostname": "sw1", "mac_addresses": ["aa:aa:aa:aa:aa:01"], "vendor": "Cisco"},
    ]}
    res = load(store, doc)
    assert res.created == 1
    ci = only_ci(store)
    assert (ci.attrs["serial_number"], ci.attrs["vendor"], ci.name) == ("FOC1", "Cisco", "sw1")


def test_key_conflict_is_recorded_and_both_cis_untouched(store: GraphStore) -> None:
    load(store, {"source": "snmp", "cis": [
        {"ref": "a", "class": "Server", "hostname": "a", "serial_number": "S-A"},
        # A serial of its own: the item's keys tie two boxes whose serials contradict (no merge).
        {"ref": "b", "class": "Server", "hostname": "b", "serial_number": "S-B",
         "mac_addresses": ["02:00:00:00:00:0b"]},
    ]})
    before = {c.id: c for c in store.search(SearchQuery()).items}
    events_before = len(store.events())
    res = load(store, {"source": "ssh", "cis": [
        {"ref": "x", "class": "Server", "serial_number": "S-A", "mac_addresses": ["02:00:00:00:00:0b"],
         "os": "Debian"},
        {"ref": "y", "class": "Server", "hostname": "c", "serial_number": "S-C"},
    ], "relationships": [{"type": "DEPENDS_ON", "from": "y", "to": "x"}]}, T0 + timedelta(hours=1))
    assert len(res.conflicts) == 1 and res.created == 1
    after = {c.id: c for c in store.search(SearchQuery()).items}
    for ci_id, ci in before.items():
        assert after[ci_id].attrs == ci.attrs and after[ci_id].updated_at == ci.updated_at
    conflicts = store.conflicts()
    assert len(conflicts) == 1
    assert sorted(conflicts[0].ci_ids) == sorted(before)
    assert conflicts[0].source == "ssh" and "cis[0]" in conflicts[0].item
    assert set(conflicts[0].keys.values()) == set(before)
    # only the non-conflicting CI was created; the relationship to the conflicting item was not made
    assert len(store.events()) == events_before + 1
    assert store.relationships() == []
    # seeing the same conflict again does not pile up records
    load(store, {"source": "ssh", "cis": [
        {"class": "Server", "serial_number": "S-A", "mac_addresses": ["02:00:00:00:00:0b"]}]})
    assert len(store.conflicts()) == 1


def estate_doc() -> dict[str, Any]:
    return {
        "source": "import:csv", "scope": "estate.csv", "complete": True,
        "cis": [
            {"ref": "svc", "class": "Service", "name": "Checkout", "service_type": "business", "tier": 1},
            {"ref": "app", "class": "Application", "name": "orders-api", "version": "2.1"},
            {"ref": "db", "class": "Database", "name": "orders-db", "engine": "postgres", "role": "primary"},
            {"ref": "h1", "class": "Server", "hostname": "db-01", "serial_number": "SRV-1"},
            {"ref": "h2", "class": "VirtualMachine", "hostname": "app-01", "ip_addresses": ["10.1.0.7"]},
            {"ref": "team", "class": "Team", "name": "payments"},
        ],
        "relationships": [
            {"type": "DEPENDS_ON", "from": "svc", "to": "app"},
            {"type": "DEPENDS_ON", "from": "app", "to": "db", "attributes": {"port": 5432}},
            {"type": "RUNS_ON", "from": "db", "to": "h1"},
            {"type": "RUNS_ON", "from": "app", "to": "h2"},
            {"type": "OWNED_BY", "from": "app", "to": "team"},
        ],
    }


def test_reloading_the_same_batch_changes_nothing(store: GraphStore) -> None:
    first = load(store, estate_doc())
    assert (first.created, first.rels_created) == (6, 5)
    stats_before, events_before = store.stats(), store.events()
    cis_before = {c.id: c for c in store.search(SearchQuery()).items}
    again = load(store, estate_doc(), T0 + timedelta(hours=2))
    assert again.summary() == {"created": 0, "updated": 0, "unchanged": 6, "rels_created": 0,
                               "rels_updated": 0, "events": 0, "stale": 0, "retired": 0, "conflicts": 0,
                               "keys_retired": 0, "attrs_dropped": 0, "rel_attrs_dropped": 0, "merged": 0,
                               "conflicts_closed": 0}
    assert store.events() == events_before
    after = store.stats()
    assert after["runs"] == stats_before["runs"] + 1
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in stats_before.items() if k != "runs"}
    for ci_id, ci in cis_before.items():
        now = store.get_ci(ci_id)
        assert now is not None and now.attrs == ci.attrs and now.updated_at == ci.updated_at
        assert next(iter(now.sightings.values())).last_seen == iso(T0 + timedelta(hours=2))


@pytest.mark.parametrize(
    ("mutate", "error", "names"),
    [
        (lambda d: d["cis"].append({"ref": "bad", "class": "Server", "hostname": "x", "cpu_count": "many"}),
         BadInputError, ["cis[6]", "bad", "cpu_count"]),
        (lambda d: d["cis"].append({"ref": "bad", "class": "Serverr", "hostname": "x"}),
         UnknownClassError, ["cis[6]", "Serverr"]),
        (lambda d: d["relationships"].append({"type": "DEPENDS_ON", "from": "app",
                                              "to": {"class": "Database", "name": "missing-db"}}),
         BadInputError, ["relationships[5]", "missing-db", "matches no CI"]),
        (lambda d: d["relationships"].append({"type": "DEPENDS_ON", "from": "app", "to": "nope"}),
         BadInputError, ["relationships[5]", "nope"]),
        (lambda d: d["relationships"].append({"type": "OWNED_BY", "from": "app", "to": "db"}),
         BadInputError, ["relationships[5]", "OWNED_BY expects Person or Team"]),
        (lambda d: d["cis"].append({"ref": "bad", "class": "Service", "name": "NoTier", "service_type": "business"}),
         BadInputError, ["cis[6]", "tier"]),
    ],
    ids=["wrong-type", "unknown-class", "missing-ci", "unknown-ref", "wrong-end-class", "missing-required"],
)
def test_one_bad_item_writes_nothing_and_is_named(store: GraphStore, mutate: Any, error: type[Exception],
                                                  names: list[str]) -> None:
    doc = estate_doc()
    mutate(doc)
    with pytest.raises(error) as info:
        load(store, doc)
    for needle in names:
        assert needle in str(info.value)
    assert "nothing of this batch was written" in str(info.value)
    st = store.stats()
    assert (st["cis"], st["relationships"], st["events"], st["runs"]) == (0, 0, 0, 0)


def test_bad_item_in_update_batch_rolls_back_everything(store: GraphStore) -> None:
    load(store, estate_doc())
    before = store.stats()
    doc = estate_doc()
    doc["cis"][1]["version"] = "3.0"  # a real change ...
    doc["relationships"].append({"type": "DEPENDS_ON", "from": "app", "to": {"class": "Database", "name": "gone"}})
    with pytest.raises(BadInputError):
        load(store, doc, T0 + timedelta(hours=1))
    assert store.stats() == before  # ... that was not written either
    app = store.search(SearchQuery(text="orders-api")).items[0]
    assert app.attrs["version"] == "2.1"


def scan(store: GraphStore, hosts: list[str], when: datetime, complete: bool = True,
         cfg: ReconcileConfig | None = None) -> IngestResult:
    return load(store, {
        "source": "scan", "scope": "10.9.0.0/24", "complete": complete,
        "cis": [{"ref": h, "class": "Host", "hostname": h, "ip_addresses": [f"10.9.0.{i + 1}"]}
                for i, h in enumerate(hosts)],
        "relationships": [{"type": "CONNECTED_TO", "from": h, "to": hosts[0]} for h in hosts[1:]],
    }, when, cfg)


def status_of(store: GraphStore, name: str) -> str:
    ids = store.find_by_name(name)
    ci = store.get_ci(ids[0])
    assert ci is not None
    return ci.status


def test_stale_then_retired_after_k_complete_runs_partial_runs_age_nothing(store: GraphStore) -> None:
    cfg = ReconcileConfig(stale_after_runs=2, retire_after_runs=4)
    day = timedelta(days=1)
    scan(store, ["gw", "a", "b"], T0, cfg=cfg)
    load(store, {"source": "manual", "cis": [{"class": "Server", "hostname": "b", "ip_addresses": ["10.9.0.3"],
                                             "description": "kept by hand"}]}, T0)
    scan(store, ["gw", "a"], T0 + day, cfg=cfg)  # a missed 0, b's scan sighting missed 1
    assert status_of(store, "b") == "active"
    scan(store, ["gw"], T0 + 2 * day, cfg=cfg)  # a missed 1
    scan(store, ["gw"], T0 + 3 * day, complete=False, cfg=cfg)  # partial: ages nothing
    assert status_of(store, "a") == "active"
    scan(store, ["gw"], T0 + 4 * day, cfg=cfg)  # a missed 2 -> stale
    assert status_of(store, "a") == "stale"
    rel = [r for r in store.relationships(include_retired=True) if r.type == "CONNECTED_TO"]
    assert {r.status for r in rel} == {"stale"}
    assert status_of(store, "b") == "active"  # a manual record is exempt from ageing
    scan(store, ["gw"], T0 + 5 * day, cfg=cfg)
    res = scan(store, ["gw"], T0 + 6 * day, cfg=cfg)  # a missed 4 -> retired
    assert res.retired == 1
    assert status_of(store, "a") == "retired"
    assert store.relationships() == []  # retired relationships are hidden by default
    a_id = store.find_by_name("a")[0]
    statuses = [(e.old, e.new) for e in store.events([a_id]) if e.kind == "ci.status"]
    assert statuses == [("active", "stale"), ("stale", "retired")]
    scan(store, ["gw", "a"], T0 + 7 * day, cfg=cfg)  # seen again: back to life, never deleted
    assert status_of(store, "a") == "active"
    assert store.stats()["cis"] == 3


def test_a_complete_run_over_a_narrower_scope_does_not_age_the_rest(store: GraphStore) -> None:
    cfg = ReconcileConfig(stale_after_runs=1, retire_after_runs=2)
    scan(store, ["gw", "a"], T0, cfg=cfg)  # scope 10.9.0.0/24
    load(store, {"source": "scan", "scope": "10.9.1.0/24", "complete": True,
                 "cis": [{"class": "Host", "hostname": "z", "ip_addresses": ["10.9.1.9"]}]}, T0, cfg)
    load(store, {"source": "scan", "scope": "10.9.0.0/16", "complete": True, "cis": []},
         T0 + timedelta(days=1), cfg)  # covers both: everything missed once -> stale
    assert {status_of(store, n) for n in ("gw", "a", "z")} == {"stale"}
    load(store, {"source": "scan", "scope": "10.9.1.0/24", "complete": True,
                 "cis": [{"class": "Host", "hostname": "z", "ip_addresses": ["10.9.1.9"]}]},
         T0 + timedelta(days=2), cfg)  # narrower: only z's scope
    assert status_of(store, "z") == "active" and status_of(store, "gw") == "stale"


def test_history_as_of_and_near(store: GraphStore) -> None:
    load(store, estate_doc(), T0)
    h1 = store.find_by_name("db-01")[0]
    load(store, {"source": "ssh", "cis": [{"class": "Server", "serial_number": "SRV-1", "os": "RHEL 9"}]},
         T0 + timedelta(days=1))
    load(store, {"source": "import:csv", "cis": [{"class": "Server", "serial_number": "SRV-1"},
                                                 {"class": "Team", "name": "dba"}],
                 "relationships": [{"type": "SUPPORTED_BY", "from": {"class": "Server", "serial_number": "SRV-1"},
                                    "to": {"class": "Team", "name": "dba"}}]}, T0 + timedelta(days=2))
    past = ci_as_of(store, h1, iso(T0 + timedelta(hours=12)))
    assert past.cls == "Server" and "os" not in past.attrs
    assert [r["type"] for r in past.relationships] == ["RUNS_ON"]
    mid = ci_as_of(store, h1, iso(T0 + timedelta(days=1, hours=1)))
    assert mid.attrs["os"] == "RHEL 9" and len(mid.relationships) == 1
    now = ci_as_of(store, h1, iso(T0 + timedelta(days=3)))
    assert sorted(r["type"] for r in now.relationships) == ["RUNS_ON", "SUPPORTED_BY"]
    with pytest.raises(NotFoundError):
        ci_as_of(store, h1, iso(T0 - timedelta(days=1)))

    svc = store.find_by_name("Checkout")[0]
    schema = default_schema()
    since = iso(T0 + timedelta(hours=1))
    assert history_near(store, schema, svc, since, depth=0) == []
    near = history_near(store, schema, svc, since, depth=3)  # Checkout -> orders-api -> orders-db -> db-01
    assert [(e.ci_id, e.attr, e.new) for e in near if e.kind == "ci.attr"] == [(h1, "os", "RHEL 9")]
    assert history_near(store, schema, svc, since, depth=2) == []


def test_search_neighbors_and_pagination(store: GraphStore) -> None:
    res = load(store, estate_doc())
    ids = res.ci_ids
    hosts = store.search(SearchQuery(classes=default_schema().descendants("Host")))
    assert sorted(c.name or "" for c in hosts.items) == ["app-01", "db-01"]
    by_ip = store.search(SearchQuery(attrs={"ip_addresses": "10.1.0.7"}))
    assert [c.id for c in by_ip.items] == [ids["h2"]]
    page1 = store.search(SearchQuery(limit=4, offset=0))
    page2 = store.search(SearchQuery(limit=4, offset=4))
    assert page1.total == page2.total == 6
    assert len({c.id for c in page1.items} | {c.id for c in page2.items}) == 6
    assert store.search(SearchQuery(text="ORDERS")).total == 2
    out = store.neighbors([ids["app"]], ["DEPENDS_ON", "RUNS_ON"], "out")
    assert sorted((r.type, r.dst) for r in out) == sorted([("DEPENDS_ON", ids["db"]), ("RUNS_ON", ids["h2"])])
    inn = store.neighbors([ids["app"]], None, "in")
    assert [(r.type, r.src) for r in inn] == [("DEPENDS_ON", ids["svc"])]
    both = store.neighbors([ids["db"]], None, "both")
    assert len(both) == 2
    dep = store.relationships(ids["app"], "DEPENDS_ON", "out")
    assert dep[0].attrs == {"port": 5432}
    assert store.find_by_key("device:serial_number=srv-1") == ids["h1"]
    # Filters on an identity attribute (Neo4j starts from its key index) stay exact and combine.
    assert [c.id for c in store.search(SearchQuery(attrs={"serial_number": "SRV-1"})).items] == [ids["h1"]]
    assert store.search(SearchQuery(attrs={"serial_number": "srv-1"})).total == 0  # keys fold case, values do not
    assert store.search(SearchQuery(attrs={"serial_number": "SRV-1", "hostname": "app-01"})).total == 0
    assert store.search(SearchQuery(attrs={"serial_number": "SRV-1"}, classes=["VirtualMachine"])).total == 0
    assert store.search(SearchQuery(attrs={"name": "orders-db", "engine": "postgres"})).total == 1


def test_run_ledger_records_scope_and_completeness(store: GraphStore) -> None:
    scan(store, ["gw"], T0)
    scan(store, ["gw"], T0 + timedelta(hours=1), complete=False)
    runs = store.runs("scan")
    assert [(r.scope, r.complete) for r in runs] == [("10.9.0.0/24", False), ("10.9.0.0/24", True)]
    assert runs[1].stats["created"] == 1
