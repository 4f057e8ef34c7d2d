"""Order-independent identity, automatic and manual merges, aliases and conflict resolutions: the same
on every store (issue 17, items 1, 5, 8 and 9)."""

from __future__ import annotations

import ast
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError, NotFoundError
from cmdb.ingest import IngestResult, ingest
from cmdb.ingest_pipeline import ingest_many
from cmdb.merge import merge_cis, resolve_conflict
from cmdb.store.base import GraphStore, SearchQuery
from cmdb.store.merges import ConflictResolution

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

# Five sources describing one cloud server and what the scan saw on it.
FIVE = {
    "scan": {"source": "scan", "cis": [
        {"ref": "h", "class": "Host", "hostname": "web-01", "ip_addresses": ["10.0.0.5"]},
        {"ref": "ip", "class": "IPAddress", "address": "10.0.0.5"},
        {"ref": "ep", "class": "ServiceEndpoint", "address": "10.0.0.5", "protocol": "tcp", "port": 22}],
        "relationships": [{"type": "HAS_ADDRESS", "from": "h", "to": "ip"},
                          {"type": "HOSTED_ON", "from": "ep", "to": "h"}]},
    "snmp": {"source": "snmp", "cis": [{"class": "Server", "serial_number": "CZ1234",
                                        "mac_addresses": ["00:1a:2b:3c:4d:01"], "vendor": "Dell"}]},
    "ssh": {"source": "ssh", "cis": [{"class": "VirtualMachine", "hostname": "web-01", "cloud_instance_id": "i-0abc",
                                      "fqdn": "web-01.example.com", "mac_addresses": ["00:1a:2b:3c:4d:01"],
                                      "ip_addresses": ["10.0.0.5"], "os": "Ubuntu", "hypervisor": "nitro"}]},
    "aws": {"source": "aws", "cis": [{"class": "CloudInstance", "cloud_instance_id": "i-0abc",
                                      "ip_addresses": ["10.0.0.5"], "region": "eu-central-1"}]},
    "import": {"source": "import", "cis": [{"class": "Server", "hostname": "web-01", "serial_number": "CZ1234",
                                            "fqdn": "web-01.example.com", "environment": "production"}]},
}
# Three sources whose serials contradict: however loaded, a conflict.
CONTRADICTING = {
    "import": {"source": "import", "cis": [{"class": "Server", "hostname": "db-1", "ip_addresses": ["10.0.1.9"],
                                            "serial_number": "S-ONE"}]},
    "snmp": {"source": "snmp", "cis": [{"class": "Server", "serial_number": "S-TWO",
                                        "mac_addresses": ["02:00:00:00:01:09"]}]},
    "ssh": {"source": "ssh", "cis": [{"class": "Server", "hostname": "db-1", "ip_addresses": ["10.0.1.9"],
                                      "mac_addresses": ["02:00:00:00:01:09"]}]},
}


def load(store: GraphStore, doc: dict[str, Any], now: datetime = T0) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=now)


def snapshot(store: GraphStore) -> tuple[Any, ...]:
    """What a user sees, without ids or times: CIs by class and name with their attributes, and the
    relationships between them by name."""
    cis = store.search(SearchQuery(limit=1000)).items
    names = {c.id: f"{c.cls}:{c.name}" for c in cis}
    rels = sorted((r.type, names[r.src], names[r.dst], r.status) for r in store.relationships(limit=1000))
    return (tuple(sorted((c.cls, c.name or "", repr(sorted(c.attrs.items())), c.status) for c in cis)), tuple(rels),
            len([c for c in store.conflicts() if c.resolution is None]))


def load_in_order(store: GraphStore, docs: dict[str, dict[str, Any]], order: tuple[str, ...]) -> None:
    store.clear()
    for i, name in enumerate(order):
        load(store, docs[name], T0 + timedelta(minutes=i))


def test_every_order_of_five_sources_gives_the_same_cmdb(store: GraphStore) -> None:
    results: dict[tuple[Any, ...], list[tuple[str, ...]]] = {}
    for order in itertools.permutations(FIVE):
        load_in_order(store, FIVE, order)
        results.setdefault(snapshot(store), []).append(order)
    assert len(results) == 1, {k: v[:2] for k, v in results.items()}
    cis, rels, conflicts = next(iter(results))
    assert conflicts == 0
    assert [(c[0], c[1]) for c in cis] == [("CloudInstance", "web-01"), ("IPAddress", "10.0.0.5"),
                                           ("ServiceEndpoint", "10.0.0.5:22/tcp")]
    host = dict(ast.literal_eval(cis[0][2]))  # the repr of sorted (name, value) pairs
    # The resolved class's attributes only: ssh's hypervisor (a VirtualMachine's) stays in provenance.
    assert "hypervisor" not in host and host["region"] == "eu-central-1" and host["serial_number"] == "CZ1234"
    assert list(rels) == [("HAS_ADDRESS", "CloudInstance:web-01", "IPAddress:10.0.0.5", "active"),
                    ("HOSTED_ON", "ServiceEndpoint:10.0.0.5:22/tcp", "CloudInstance:web-01", "active")]


def test_contradicting_serials_give_a_conflict_in_every_order(store: GraphStore) -> None:
    for order in itertools.permutations(CONTRADICTING):
        load_in_order(store, CONTRADICTING, order)
        open_conflicts = [c for c in store.conflicts() if c.resolution is None]
        assert open_conflicts, order
        assert any("serial_number" in c.item for c in open_conflicts), [c.item for c in open_conflicts]
        assert len(store.search(SearchQuery(classes=["Server"])).items) in (1, 2)


def two_boxes(store: GraphStore) -> tuple[str, str]:
    """An imported server (with an owner) and the same box seen by aws (with a subnet), not yet tied."""
    load(store, {"source": "import", "cis": [
        {"ref": "h", "class": "Server", "hostname": "app-7", "serial_number": "SN-7", "ip_addresses": ["10.0.7.7"]},
        {"ref": "p", "class": "Person", "email": "ops@example.com"}],
        "relationships": [{"type": "OWNED_BY", "from": "h", "to": "p"}]})
    load(store, {"source": "aws", "cis": [
        {"ref": "h", "class": "CloudInstance", "cloud_instance_id": "i-777", "region": "eu-west-1"},
        {"ref": "s", "class": "Subnet", "cidr": "10.0.7.0/24"}],
        "relationships": [{"type": "IN_SUBNET", "from": "h", "to": "s"}]}, T0 + timedelta(minutes=1))
    srv = store.search(SearchQuery(classes=["Server"])).items[0].id
    cloud = store.search(SearchQuery(classes=["CloudInstance"])).items[0].id
    return srv, cloud


def test_an_item_tying_two_cis_merges_them_with_evidence(store: GraphStore) -> None:
    srv, cloud = two_boxes(store)
    res = load(store, {"source": "ssh", "cis": [{"class": "VirtualMachine", "hostname": "app-7",
                                                 "ip_addresses": ["10.0.7.7"], "cloud_instance_id": "i-777"}]},
               T0 + timedelta(minutes=2))
    assert res.conflicts == []
    hosts = store.search(SearchQuery(classes=["Host", "Server", "CloudInstance", "VirtualMachine"])).items
    assert len(hosts) == 1 and hosts[0].id == srv  # the older CI is kept
    assert hosts[0].cls == "CloudInstance" and hosts[0].attrs["serial_number"] == "SN-7"
    assert {(r.type, r.src) for r in store.relationships(srv)} == {("OWNED_BY", srv), ("IN_SUBNET", srv)}
    assert store.get_ci(cloud) is not None and store.get_ci(cloud).id == srv  # type: ignore[union-attr]
    assert store.resolve_alias(cloud) == srv and store.aliases_of(srv) == [cloud]
    merged = [e for e in store.events([srv]) if e.kind == "ci.merged"]
    assert len(merged) == 1 and merged[0].peer_id == cloud
    assert any("i-777" in k for k in merged[0].new["keys"])
    # both histories: the duplicate's creation is in the kept CI's history
    assert {e.ci_id for e in store.events([srv]) if e.kind == "ci.created"} >= {srv, cloud}


def test_manual_merge_moves_relationships_and_keeps_both_histories(store: GraphStore) -> None:
    srv, cloud = two_boxes(store)
    before = snapshot(store)
    dry = merge_cis(store, srv, cloud, actor="alice", dry_run=True, now=T0 + timedelta(hours=1))
    assert dry.dry_run and dry.kept == srv and dry.cls == "CloudInstance" and dry.rels_moved == 1
    assert snapshot(store) == before and store.resolve_alias(cloud) is None
    report = merge_cis(store, srv, cloud, actor="alice", now=T0 + timedelta(hours=1))
    assert report.kept == srv and report.attrs["region"] == "eu-west-1"
    kept = store.get_ci(srv)
    assert kept is not None and kept.attrs["serial_number"] == "SN-7" and kept.attrs["cloud_instance_id"] == "i-777"
    assert {s for s, _ in kept.sightings} == {"import", "aws"}
    rels = store.relationships(srv)
    assert sorted(r.type for r in rels) == ["IN_SUBNET", "OWNED_BY"] and all(r.src == srv for r in rels)
    assert store.relationships(cloud) == []
    # the duplicate's id, name and keys resolve to the kept CI
    assert store.get_ci(cloud).id == srv  # type: ignore[union-attr]
    assert srv in store.find_by_name("app-7")
    assert store.find_by_key("device:cloud_instance_id=i-777") == srv
    history = store.events([srv])
    kinds = [e.kind for e in history]
    assert "ci.merged" in kinds and "rel.moved" in kinds
    assert [e.actor for e in history if e.kind == "ci.merged"] == ["alice"]
    assert {e.ci_id for e in history if e.kind == "ci.created"} == {srv, cloud}
    # the subnet's history still shows the relationship it had with the duplicate, and the move
    subnet = store.search(SearchQuery(classes=["Subnet"])).items[0].id
    assert {e.kind for e in store.events([subnet])} >= {"ci.created", "rel.created", "rel.moved"}
    # a later batch naming the duplicate's key updates the kept CI
    load(store, {"source": "aws", "cis": [{"class": "CloudInstance", "cloud_instance_id": "i-777",
                                           "region": "eu-west-1", "instance_type": "m5.large"}]},
         T0 + timedelta(hours=2))
    assert store.get_ci(srv).attrs["instance_type"] == "m5.large"  # type: ignore[union-attr]
    assert len(store.search(SearchQuery(classes=["CloudInstance"])).items) == 1
    with pytest.raises(NotFoundError):
        merge_cis(store, srv, "ci-does-not-exist")
    with pytest.raises(BadInputError):
        merge_cis(store, srv, srv)


def conflicted(store: GraphStore) -> str:
    for i, name in enumerate(("import", "snmp", "ssh")):
        load(store, CONTRADICTING[name], T0 + timedelta(minutes=i))
    (conflict,) = store.conflicts()
    assert len(conflict.ci_ids) == 2 and conflict.resolution is None
    return conflict.id


def test_keep_separate_stops_the_conflict_being_raised_again(store: GraphStore) -> None:
    cid = conflicted(store)
    store.resolve_conflict(ConflictResolution(cid, "keep_separate", "2026-11-02T00:00:00.000000Z", "bob",
                                              store.conflicts()[0].ci_ids))
    resolved = store.conflict(cid)
    assert resolved is not None and (resolved.resolution, resolved.resolved_by) == ("keep_separate", "bob")
    res = load(store, CONTRADICTING["ssh"], T0 + timedelta(hours=1))
    assert res.conflicts == []
    assert store.conflicts() == []  # no longer open: kept, as resolved
    assert [(c.state, c.resolution, c.resolved_by) for c in store.conflicts("resolved")] == [
        ("resolved", "keep_separate", "bob")]
    assert len(store.search(SearchQuery(classes=["Server"])).items) == 2
    with pytest.raises(NotFoundError):
        store.resolve_conflict(ConflictResolution("conflict-nope", "keep_separate", "x", None, []))
    with pytest.raises(BadInputError):
        resolve_conflict(store, cid, "merge")  # already resolved


def test_resolving_a_conflict_by_merge(store: GraphStore) -> None:
    cid = conflicted(store)
    ids = store.conflicts()[0].ci_ids
    resolution, report = resolve_conflict(store, cid, "merge", keep=ids[1], actor="carol")
    assert report is not None and report.kept == ids[1] and resolution.resolution == "merged"
    assert len(store.search(SearchQuery(classes=["Server"])).items) == 1
    assert store.conflict(cid).resolution == "merged"  # type: ignore[union-attr]
    assert store.conflicts() == [] and [(c.id, c.state, c.resolved_by) for c in store.conflicts("all")] == [
        (cid, "resolved", "carol")]
    assert store.get_ci(ids[0]).id == ids[1]  # type: ignore[union-attr]


def test_a_claim_from_another_family_is_a_conflict_not_a_switch(store: GraphStore) -> None:
    load(store, {"source": "ssh", "cis": [{"class": "VirtualMachine", "hostname": "vm-3",
                                           "mac_addresses": ["02:00:00:00:03:03"], "hypervisor": "kvm"}]})
    res = load(store, {"source": "manual", "cis": [{"class": "Switch", "hostname": "vm-3",
                                                    "mac_addresses": ["02:00:00:00:03:03"], "role": "access"}]},
               T0 + timedelta(minutes=1))
    (ci,) = store.search(SearchQuery()).items
    assert ci.cls == "VirtualMachine" and ci.attrs["hypervisor"] == "kvm" and "role" not in ci.attrs
    assert ci.provenance["role"]["manual"].value == "access"  # kept in provenance
    assert len(res.conflicts) == 1 and res.conflicts[0].item_class == "Switch" and res.conflicts[0].ci_ids == [ci.id]
    assert [c.item_class for c in store.conflicts()] == ["Switch"]


def test_sibling_claims_resolve_by_precedence_with_the_resolved_class_attributes(store: GraphStore) -> None:
    load(store, {"source": "ssh", "cis": [{"class": "VirtualMachine", "cloud_instance_id": "i-9",
                                           "hypervisor": "xen"}]})
    load(store, {"source": "aws", "cis": [{"class": "CloudInstance", "cloud_instance_id": "i-9",
                                           "region": "us-east-1"}]}, T0 + timedelta(minutes=1))
    (ci,) = store.search(SearchQuery()).items
    assert ci.cls == "CloudInstance" and ci.attrs.get("region") == "us-east-1" and "hypervisor" not in ci.attrs
    assert ci.provenance["hypervisor"]["ssh"].value == "xen"
    assert store.conflicts() == []


def test_a_person_known_by_an_email_alone_is_named_by_it(store: GraphStore) -> None:
    load(store, {"source": "import", "cis": [{"class": "Person", "email": "Dana@Example.com"}]})
    (person,) = store.search(SearchQuery()).items
    assert person.name == "Dana@Example.com"


def test_two_items_of_one_batch_disagreeing_on_one_ci_are_reported(store: GraphStore) -> None:
    res = load(store, {"source": "import", "cis": [
        {"class": "Server", "serial_number": "SN-D", "os": "Debian 12"},
        {"class": "Server", "serial_number": "SN-D", "os": "Debian 11"}]})
    assert res.created == 1 and len(res.conflicts) == 1
    (c,) = store.conflicts()
    assert c.attrs == {"os": ["Debian 12", "Debian 11"]} and "cis[0]" in c.item and "cis[1]" in c.item


def test_merges_through_the_pipelined_loader(store: GraphStore) -> None:
    """``cmdb load`` of many files plans a batch while the previous one is written (Neo4j): a batch
    that merges is written with its merge, and the batch planned meanwhile is planned again."""
    order = ("import", "aws", "ssh", "snmp", "scan")
    batches = [Batch.from_dict(FIVE[name]) for name in order] * 2
    results = list(ingest_many(store, batches, pipeline=True, now=T0))
    assert all(r.conflicts == [] for r in results)
    hosts = store.search(SearchQuery(classes=["CloudInstance", "Server", "VirtualMachine", "Host"])).items
    assert len(hosts) == 1 and hosts[0].cls == "CloudInstance"
    assert len(store.relationships()) == 2
    assert len([e for e in store.events() if e.kind == "ci.merged"]) == 1


def test_stats_count_open_conflicts_only(store: GraphStore) -> None:
    cid = conflicted(store)
    assert store.stats()["conflicts"] == 1
    resolve_conflict(store, cid, "keep_separate", actor="dana")
    assert store.stats()["conflicts"] == 0 and store.conflicts() == [] and len(store.conflicts("all")) == 1


def test_a_scans_generic_host_never_clashes_with_a_switch(store: GraphStore) -> None:
    switch = {"source": "snmp", "cis": [{"class": "Switch", "hostname": "sw-9", "ip_addresses": ["10.9.9.9"],
                                         "serial_number": "FOC9", "role": "access"}]}
    scan = {"source": "scan", "cis": [{"class": "Host", "hostname": "sw-9", "ip_addresses": ["10.9.9.9"]}]}
    for first, second in ((switch, scan), (scan, switch)):
        store.clear()
        load(store, first)
        load(store, second, T0 + timedelta(minutes=1))
        (ci,) = store.search(SearchQuery()).items
        assert ci.cls == "Switch" and ci.attrs["role"] == "access"
        assert store.conflicts() == []


def test_aliases_and_resolutions_survive_a_dump_and_restore(store: GraphStore) -> None:
    srv, cloud = two_boxes(store)
    merge_cis(store, srv, cloud, actor="erin", now=T0 + timedelta(hours=1))
    for i, name in enumerate(("import", "snmp", "ssh")):
        load(store, CONTRADICTING[name], T0 + timedelta(hours=2, minutes=i))
    (open_one,) = [c for c in store.conflicts() if c.resolution is None]
    resolve_conflict(store, open_one.id, "keep_separate", actor="erin")
    dumped = list(store.dump())
    assert {kind for kind, _ in dumped} >= {"ci_alias", "conflict_resolution"}
    store.clear()
    store.restore(iter(dumped))
    assert store.resolve_alias(cloud) == srv and store.get_ci(cloud).id == srv  # type: ignore[union-attr]
    assert store.conflict(open_one.id).resolution == "keep_separate"  # type: ignore[union-attr]
    assert "ci.merged" in {e.kind for e in store.events([srv])}


def test_a_one_ci_conflict_settled_as_separate_is_not_raised_again(store: GraphStore) -> None:
    vm = {"source": "ssh", "cis": [{"class": "VirtualMachine", "hostname": "vm-4",
                                    "mac_addresses": ["02:00:00:00:04:04"]}]}
    switch = {"source": "manual", "cis": [{"class": "Switch", "hostname": "vm-4",
                                           "mac_addresses": ["02:00:00:00:04:04"]}]}
    load(store, vm)
    (conflict,) = load(store, switch, T0 + timedelta(minutes=1)).conflicts
    with pytest.raises(BadInputError, match="nothing to merge"):
        resolve_conflict(store, conflict.id, "merge")
    resolve_conflict(store, conflict.id, "keep_separate", actor="fay")
    assert load(store, switch, T0 + timedelta(minutes=2)).conflicts == []
    assert store.stats()["conflicts"] == 0


def test_an_item_contradicting_its_one_ci_is_written_and_reported(store: GraphStore) -> None:
    load(store, CONTRADICTING["snmp"])
    load(store, CONTRADICTING["ssh"], T0 + timedelta(minutes=1))
    res = load(store, CONTRADICTING["import"], T0 + timedelta(minutes=2))
    (conflict,) = res.conflicts
    (ci,) = store.search(SearchQuery()).items
    assert conflict.ci_ids == [ci.id] and "serial_number" in conflict.item and "written" in conflict.item
    assert ci.attrs["serial_number"] == "S-TWO"  # snmp outranks the import
    assert ci.provenance["serial_number"]["import"].value == "S-ONE"
