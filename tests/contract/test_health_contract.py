"""The health report on every store: a prepared estate with known defects gives exactly these findings.

The estate (loaded through ``ingest`` at fixed times, the report computed at ``NOW``):

* complete: Service ``shop`` (owned, supported), Application ``web`` RUNS_ON Server ``srv1``, Team ``Web``;
* Service ``pay`` lacks ``criticality`` (recommended), an owner and a support team;
* Application ``orphan-app`` has no relationship at all;
* Server ``srv2`` (hostname ``dup-host``) and VirtualMachine ``vm-x`` (hostname ``DUP-HOST``): one
  hostname, no shared key; ``vm-x`` also lacks ``vendor`` and ``model``, runs nothing and has no owner;
* two Persons named ``Alex Smith`` (different e-mails);
* a Server item whose serial names ``srv1`` and whose hostname+IP name ``srv2``: a recorded conflict;
* Host ``old-a``, seen only by a complete scan 40 days ago (so that scan's scope is stale too), runs
  nothing and has no owner;
* Switch ``sw-b``, missed by a later complete snmp run: stale.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.batch import Batch
from cmdb.health.config import HealthConfig
from cmdb.health.report import build_report, filter_class
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore, iso
from cmdb.store.health import EdgeRule, HealthSnapshot

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SWITCH = {"class": "Switch", "vendor": "Cisco", "model": "C9300", "os_version": "17.9"}
MANUAL: dict[str, Any] = {
    "source": "manual",
    "cis": [
        {"ref": "web-team", "class": "Team", "name": "Web", "email": "web@example.com"},
        {"ref": "shop", "class": "Service", "name": "shop", "service_type": "business", "tier": 1,
         "criticality": "high", "environment": "production", "description": "the web shop"},
        {"ref": "pay", "class": "Service", "name": "pay", "service_type": "business", "tier": 1,
         "environment": "production", "description": "payments"},
        {"ref": "web", "class": "Application", "name": "web", "version": "1.0", "environment": "production"},
        {"ref": "orphan", "class": "Application", "name": "orphan-app", "version": "2.0", "environment": "test"},
        {"ref": "srv1", "class": "Server", "hostname": "srv1", "serial_number": "S1", "ip_addresses": ["10.0.0.1"],
         "vendor": "Dell", "model": "R650", "os": "Linux"},
        {"ref": "srv2", "class": "Server", "hostname": "dup-host", "serial_number": "S2",
         "ip_addresses": ["10.0.0.2"], "vendor": "Dell", "model": "R650", "os": "Linux"},
        {"ref": "vm", "class": "VirtualMachine", "hostname": "DUP-HOST", "ip_addresses": ["10.0.0.3"], "os": "Linux"},
        {"ref": "p1", "class": "Person", "name": "Alex Smith", "email": "alex.smith@example.com"},
        {"ref": "p2", "class": "Person", "name": "Alex Smith", "email": "asmith@example.com"},
    ],
    "relationships": [
        {"type": "OWNED_BY", "from": "shop", "to": "web-team"},
        {"type": "SUPPORTED_BY", "from": "shop", "to": "web-team"},
        {"type": "DEPENDS_ON", "from": "shop", "to": "web"},
        {"type": "RUNS_ON", "from": "web", "to": "srv1"},
        {"type": "OWNED_BY", "from": "srv1", "to": "web-team"},
        {"type": "OWNED_BY", "from": "srv2", "to": "web-team"},
    ],
}
CONFLICTING = {"source": "import:cmdb", "cis": [
    {"class": "Server", "serial_number": "S1", "hostname": "dup-host", "ip_addresses": ["10.0.0.2"]}]}
OLD_SCAN = {"source": "scan", "scope": "10.9.0.0/24", "complete": True, "cis": [
    {"class": "Host", "hostname": "old-a", "ip_addresses": ["10.9.0.5"], "vendor": "HP", "model": "DL360",
     "os": "Linux"}]}


def snmp(hosts: list[str]) -> dict[str, Any]:
    return {"source": "snmp", "scope": "lab", "complete": True,
            "cis": [{**SWITCH, "hostname": h, "serial_number": f"FOC-{h}"} for h in hosts]}


def prepare(store: GraphStore) -> None:
    cfg = ReconcileConfig(stale_after_runs=1, retire_after_runs=5)
    ingest(store, Batch.from_dict(OLD_SCAN), now=NOW - 40 * DAY, config=cfg)
    ingest(store, Batch.from_dict(snmp(["sw-a", "sw-b"])), now=NOW - 2 * DAY, config=cfg)
    ingest(store, Batch.from_dict(snmp(["sw-a"])), now=NOW - DAY, config=cfg)
    ingest(store, Batch.from_dict(MANUAL), now=NOW - DAY, config=cfg)
    res = ingest(store, Batch.from_dict(CONFLICTING), now=NOW - DAY, config=cfg)
    assert res.summary()["conflicts"] == 1


def test_a_prepared_estate_gives_exactly_its_known_defects(store: GraphStore) -> None:
    prepare(store)
    schema = default_schema()
    report = build_report(store, schema, HealthConfig.load(schema), now=NOW)
    by_rule = Counter(f.rule for f in report.findings)
    assert by_rule == {"missing-recommended": 3, "duplicate-hostname": 1, "duplicate-name": 1, "open-conflict": 1,
                       "orphan": 1, "service-without-owner": 1, "service-without-support": 1,
                       "idle-unowned-host": 2, "source-not-complete": 1, "stale": 1, "not-seen": 1}
    named = {(f.rule, f.cls, f.count, tuple(sorted(c.name or "" for c in f.cis))) for f in report.findings}
    assert named == {
        ("missing-recommended", "Service", 1, ("pay",)),
        ("missing-recommended", "VirtualMachine", 1, ("DUP-HOST",)),
        ("missing-recommended", "VirtualMachine", 1, ("DUP-HOST",)),
        ("duplicate-hostname", None, 2, ("DUP-HOST", "dup-host")),
        ("duplicate-name", "Person", 2, ("Alex Smith", "Alex Smith")),
        ("open-conflict", "Server", 2, ("dup-host", "srv1")),
        ("orphan", "Application", 1, ("orphan-app",)),
        ("service-without-owner", "Service", 1, ("pay",)),
        ("service-without-support", "Service", 1, ("pay",)),
        ("idle-unowned-host", "Host", 1, ("old-a",)),
        ("idle-unowned-host", "VirtualMachine", 1, ("DUP-HOST",)),
        ("source-not-complete", None, 0, ()),
        ("stale", "Switch", 1, ("sw-b",)),
        ("not-seen", "Host", 1, ("old-a",)),
    }
    gaps = {f.detail["attribute"] for f in report.findings
            if f.rule == "missing-recommended" and f.cls == "VirtualMachine"}
    assert gaps == {"vendor", "model"}
    [src] = [f for f in report.findings if f.rule == "source-not-complete"]
    assert (src.detail["source"], src.detail["scope"]) == ("scan", "10.9.0.0/24")
    assert all(f.action and f.why for f in report.findings)
    # Scores are plain shares: the VM misses 2 of 4 recommended values and is in two correctness findings.
    assert report.classes["VirtualMachine"] == {"cis": 1, "completeness": 50.0, "correctness": 0.0,
                                                "staleness": 100.0, "score": 50.0}
    assert report.classes["Switch"] == {"cis": 2, "completeness": 100.0, "correctness": 100.0,
                                        "staleness": 50.0, "score": 83.3}
    assert report.classes["Team"]["score"] == 100.0 and 0 < report.overall < 100
    only = filter_class(report, schema, "Host")  # Host and its subclasses
    assert {f.cls for f in only.findings} == {"Host", "VirtualMachine", "Server", None}
    assert set(only.classes) == {"Host", "Server", "VirtualMachine"}


def test_store_questions_answer_exactly(store: GraphStore) -> None:
    prepare(store)
    assert store.class_status_counts()["Switch"] == {"active": 1, "stale": 1}
    gaps = store.attribute_gaps({"VirtualMachine": ["vendor", "os", "model"], "Service": ["criticality", "tier"]},
                                sample=1)
    assert [(g.cls, g.attr, g.missing, [c.name for c in g.sample]) for g in gaps] == [
        ("VirtualMachine", "vendor", 1, ["DUP-HOST"]), ("VirtualMachine", "os", 0, []),
        ("VirtualMachine", "model", 1, ["DUP-HOST"]), ("Service", "criticality", 1, ["pay"]),
        ("Service", "tier", 0, [])]
    [group] = store.duplicate_groups(["Server", "VirtualMachine", "Host"], "hostname")
    assert group.value == "dup-host" and sorted(c.cls for c in group.cis) == ["Server", "VirtualMachine"]
    assert [c.id for c in group.cis] == sorted(c.id for c in group.cis)
    # Names group within one class: srv2 and vm-x share the name dup-host across two classes.
    assert [g.value for g in store.duplicate_groups(["Person", "Server", "VirtualMachine"])] == ["alex smith"]
    assert store.duplicate_groups(["Service"]) == []
    lacking = store.cis_lacking(["Service"], [EdgeRule(("OWNED_BY", "SERVICE_OWNER"), "out")])
    assert [c.name for c in lacking] == ["pay"]
    assert {c.name for c in store.cis_lacking(["Server", "Application"], [EdgeRule(None, "both")])} == {"orphan-app"}
    assert {c.name for c in store.cis_lacking(["Server"], [EdgeRule(("RUNS_ON",), "in")])} == {"dup-host"}
    assert store.cis_lacking(["Team"], [EdgeRule(("OWNED_BY",), "in")]) == []
    runs = {(s.source, s.scope): (s.runs, s.last_complete is not None) for s in store.source_runs()}
    assert runs == {("import:cmdb", None): (1, False), ("manual", None): (1, False), ("scan", "10.9.0.0/24"): (1, True),
                    ("snmp", "lab"): (2, True)}
    fresh = {(r.name, r.status, r.last_seen) for r in store.ci_freshness(iso(NOW - 30 * DAY))}
    assert fresh == {("old-a", "active", iso(NOW - 40 * DAY)), ("sw-b", "stale", iso(NOW - 2 * DAY))}


def test_snapshots_keep_the_scores_in_order(store: GraphStore) -> None:
    assert store.health_snapshots() == []
    for i in range(3):
        store.save_health_snapshot(HealthSnapshot(iso(NOW + i * DAY), 90.0 + i, {"completeness": 95.5},
                                                  {"Server": {"cis": 2, "score": 80.0 + i}}, {"orphan": i}))
    snaps = store.health_snapshots(limit=2)
    assert [(s.at, s.overall, s.classes["Server"]["score"], s.findings) for s in snaps] == [
        (iso(NOW + DAY), 91.0, 81.0, {"orphan": 1}), (iso(NOW + 2 * DAY), 92.0, 82.0, {"orphan": 2})]
    assert snaps[0].seq is not None and snaps[1].seq is not None and snaps[0].seq < snaps[1].seq
    assert len(store.health_snapshots()) == 3
