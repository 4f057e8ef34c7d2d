"""The expiry rule on every store, with an injected clock: thresholds, escalation, idempotency, assignment,
reassignment, renewal and retirement. Notices land in the store's outbox (delivery is tested elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore
from cmdb.store.tasks import TaskQuery
from impact.automation_config import AutomationConfig, parse_config
from impact.expiry_tasks import run_expiry_cycle

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "channels": {"mail": {"type": "email", "host": "127.0.0.1", "port": 1, "from": "cmdb@example.com"}},
    "tasks": {"default_queue": {"name": "ops-queue", "email": "ops@example.com"}},
}


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(store: GraphStore, doc: dict[str, Any], now: datetime = T0, config: ReconcileConfig | None = None) -> None:
    ingest(store, Batch.from_dict({"source": "import", **doc}), now=now, config=config)


def estate(store: GraphStore) -> None:
    load(store, {"cis": [
        {"ref": "svc", "class": "Service", "name": "Checkout", "service_type": "business", "tier": 1},
        {"ref": "lb", "class": "LoadBalancer", "hostname": "lb-fra-1", "serial_number": "LB1"},
        {"ref": "cert", "class": "Certificate", "subject": "shop.example.com", "fingerprint_sha256": "aa" * 32,
         "not_after": at(40)},
        {"ref": "lone", "class": "Certificate", "subject": "intranet.example.com", "fingerprint_sha256": "bb" * 32,
         "not_after": at(100)},
        {"ref": "alice", "class": "Person", "name": "Alice", "email": "alice@example.com"},
        {"ref": "it", "class": "Team", "name": "IT", "email": "it@example.com"},
    ], "relationships": [
        {"type": "DEPENDS_ON", "from": "svc", "to": "lb"},
        {"type": "USES_CERTIFICATE", "from": "lb", "to": "cert", "chain_position": 0},
        {"type": "SERVICE_OWNER", "from": "svc", "to": "alice"},
    ]})
    load(store, {"source": "import:licences", "scope": "licences.csv", "complete": True, "cis": [
        {"ref": "lic", "class": "License", "name": "office-suite", "product": "Office", "expires": at(20)[:10]},
        {"ref": "it", "class": "Team", "name": "IT", "email": "it@example.com"}],
        "relationships": [{"type": "OWNED_BY", "from": "lic", "to": "it"}]})


def tasks(store: GraphStore, **kw: Any) -> dict[str, Any]:
    return {t.ci_name: t for t in store.list_tasks(TaskQuery(**kw))}


def cfg(**tasks_cfg: Any) -> AutomationConfig:
    return parse_config({**CONFIG, "tasks": {**CONFIG["tasks"], **tasks_cfg}})


def test_thresholds_priority_assignment_and_idempotency(store: GraphStore) -> None:
    estate(store)
    config = cfg()
    dry = run_expiry_cycle(store, T0, config, dry_run=True)
    assert (dry.raised, dry.queued) == (2, 2) and store.list_tasks(TaskQuery()) == [] and store.list_messages() == []

    rep = run_expiry_cycle(store, T0, config)
    assert (rep.raised, rep.queued) == (2, 2)
    got = tasks(store)
    assert set(got) == {"shop.example.com", "office-suite"}  # the intranet certificate is 100 days out
    cert = got["shop.example.com"]
    assert cert.kind == "certificate_expiry" and cert.threshold == "90d"
    assert cert.priority == "P3"  # tier-1 service down (impact high) x 40 days left (urgency low)
    assert cert.assignee.person_email == "alice@example.com"
    assert cert.assignee.reason == "owner of Checkout, tier 1, which depends on it through lb-fra-1"
    assert [(s["name"], s["tier"], s["state"]) for s in cert.services_at_risk] == [("Checkout", 1, "down")]
    lic = got["office-suite"]
    assert (lic.kind, lic.threshold, lic.assignee.team_name, lic.assignee.reason) == (
        "licence_expiry", "30d", "IT", "owner of office-suite")
    assert lic.priority == "P4"  # LICENSED_BY nothing: no service (impact low) x 20 days (urgency medium)
    mails = store.list_messages()
    assert sorted(m.recipient for m in mails) == ["alice@example.com", "it@example.com"]

    again = run_expiry_cycle(store, T0 + timedelta(hours=1), config)
    assert (again.raised, again.escalated, again.reassigned, again.queued) == (0, 0, 0, 0)
    assert len(store.list_tasks(TaskQuery())) == 2 and len(store.list_messages()) == 2


def test_crossing_thresholds_escalates_and_notifies_again(store: GraphStore) -> None:
    estate(store)
    config = cfg()
    run_expiry_cycle(store, T0, config)
    rep = run_expiry_cycle(store, T0 + timedelta(days=11), config)  # 29 days left: the 30d threshold
    assert (rep.escalated, rep.raised, rep.queued) == (1, 1, 2)  # and the intranet one enters the 90 days
    cert = tasks(store)["shop.example.com"]
    assert (cert.threshold, cert.priority) == ("30d", "P2")
    assert run_expiry_cycle(store, T0 + timedelta(days=12), config).escalated == 0
    run_expiry_cycle(store, T0 + timedelta(days=41), config)  # past not_after (and the licence too)
    cert = tasks(store)["shop.example.com"]
    assert (cert.threshold, cert.priority) == ("expired", "P1")
    notes = [t.note for t in cert.transitions if t.kind == "update"]
    assert len(notes) == 2
    assert notes[0].startswith("crossed the 30d threshold; priority P3 -> P2; threshold 90d -> 30d")
    assert notes[1].startswith("expired; priority P2 -> P1; threshold 30d -> expired")
    notices = [m for m in store.list_messages() if m.task_id == cert.id]
    assert sorted(m.meta["task_event"] for m in notices) == ["escalated", "escalated", "raised"]


def test_per_class_and_per_tier_thresholds(store: GraphStore) -> None:
    estate(store)
    rep = run_expiry_cycle(store, T0, cfg(by_class={"License": [14, 0]}, by_tier={1: [30, 7, 0]}))
    assert rep.raised == 0  # the licence (20 days) and the tier-1 certificate (40 days) are both outside
    run_expiry_cycle(store, T0 + timedelta(days=15), cfg(by_class={"License": [14, 0]}, by_tier={1: [30, 7, 0]}))
    assert {t.ci_name: t.threshold for t in store.list_tasks(TaskQuery())} == {
        "shop.example.com": "30d", "office-suite": "14d", "intranet.example.com": "90d"}  # no tier: defaults


def test_owner_change_reassigns_and_tells_the_new_assignee(store: GraphStore) -> None:
    estate(store)
    config = cfg()
    load(store, {"cis": [{"ref": "c", "class": "Certificate", "subject": "intranet.example.com",
                          "fingerprint_sha256": "bb" * 32, "not_after": at(50)}]})
    run_expiry_cycle(store, T0, config)
    lone = tasks(store)["intranet.example.com"]
    assert (lone.assignee.queue, lone.assignee.team_email) == ("ops-queue", "ops@example.com")
    load(store, {"cis": [
        {"ref": "c", "class": "Certificate", "subject": "intranet.example.com", "fingerprint_sha256": "bb" * 32},
        {"ref": "bob", "class": "Person", "name": "Bob", "email": "bob@example.com"}],
        "relationships": [{"type": "OWNED_BY", "from": "c", "to": "bob"}]}, now=T0 + timedelta(days=1))
    rep = run_expiry_cycle(store, T0 + timedelta(days=1), config)
    assert rep.reassigned == 1 and rep.queued == 1
    lone = tasks(store)["intranet.example.com"]
    assert (lone.assignee.person_name, lone.assignee.reason) == ("Bob", "owner of intranet.example.com")
    told = [m for m in store.list_messages() if m.task_id == lone.id and m.meta["task_event"] == "reassigned"]
    assert [m.recipient for m in told] == ["bob@example.com"]
    assert told[0].subject.startswith("[P5] Task reassigned to you: certificate expiry: intranet.example.com")
    assert run_expiry_cycle(store, T0 + timedelta(days=1, hours=1), config).reassigned == 0


def test_renewal_resolves_and_retirement_cancels(store: GraphStore) -> None:
    estate(store)
    config = cfg()
    run_expiry_cycle(store, T0, config)
    # A renewed certificate served by the same load balancer, with a later not_after.
    load(store, {"cis": [
        {"ref": "lb", "class": "LoadBalancer", "hostname": "lb-fra-1", "serial_number": "LB1"},
        {"ref": "new", "class": "Certificate", "subject": "shop.example.com", "fingerprint_sha256": "cc" * 32,
         "not_after": at(400)}],
        "relationships": [{"type": "USES_CERTIFICATE", "from": "lb", "to": "new", "chain_position": 0}]})
    rep = run_expiry_cycle(store, T0 + timedelta(days=2), config)
    assert rep.resolved == 1
    cert = tasks(store)["shop.example.com"]
    assert cert.state == "resolved"
    assert "shop.example.com" in cert.transitions[-1].note and "cc" * 32 not in cert.transitions[-1].note
    assert cert.transitions[-1].note.startswith("renewed: certificate shop.example.com (")
    # The licence file no longer lists the licence: a complete run retires it, which cancels its task.
    load(store, {"source": "import:licences", "scope": "licences.csv", "complete": True, "cis": [
        {"ref": "it", "class": "Team", "name": "IT", "email": "it@example.com"}]},
        now=T0 + timedelta(days=3), config=ReconcileConfig(stale_after_runs=1, retire_after_runs=1))
    rep = run_expiry_cycle(store, T0 + timedelta(days=3), config)
    assert rep.cancelled == 1 and tasks(store)["office-suite"].state == "cancelled"
    assert "retired" in tasks(store)["office-suite"].transitions[-1].note
    assert run_expiry_cycle(store, T0 + timedelta(days=4), config).raised == 0  # closed tasks stay closed


def test_renewal_by_subject_alone_and_a_licence_extended(store: GraphStore) -> None:
    estate(store)
    config = cfg()
    run_expiry_cycle(store, T0 + timedelta(days=15), config)  # the intranet certificate is 85 days out now
    assert tasks(store)["intranet.example.com"].state == "open"
    load(store, {"cis": [{"ref": "n", "class": "Certificate", "subject": "intranet.example.com",
                          "fingerprint_sha256": "dd" * 32, "not_after": at(500)}]})  # found elsewhere, same subject
    load(store, {"source": "import:licences", "scope": "licences.csv", "complete": True, "cis": [
        {"ref": "lic", "class": "License", "name": "office-suite", "product": "Office", "expires": at(385)[:10]},
        {"ref": "it", "class": "Team", "name": "IT", "email": "it@example.com"}],
        "relationships": [{"type": "OWNED_BY", "from": "lic", "to": "it"}]})
    rep = run_expiry_cycle(store, T0 + timedelta(days=16), config)
    assert rep.resolved == 2 and rep.raised == 0
    notes = {t.ci_name: t.transitions[-1].note for t in store.list_tasks(TaskQuery(states=["resolved"]))}
    assert notes["intranet.example.com"].startswith("renewed: certificate intranet.example.com (")
    assert notes["office-suite"] == f"renewed: office-suite now expires {at(385)[:10]}"


def test_two_cycles_racing_raise_and_notify_once(store: GraphStore) -> None:
    from tests.contract.test_tasks_contract import race, second_store

    estate(store)
    config = cfg()
    other = second_store(store)
    try:
        reports = race([store, other], lambda s: run_expiry_cycle(s, T0, config))
    finally:
        other.close()
    assert sum(r.raised for r in reports) == 2 and sum(r.queued for r in reports) == 2
    assert len(store.list_tasks(TaskQuery())) == 2 and len(store.list_messages()) == 2
