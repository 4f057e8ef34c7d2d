"""Licence consumption and the licence_compliance task, on every store, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore
from cmdb.store.tasks import TaskQuery
from impact.automation_config import parse_config
from impact.licences import COMPLIANCE_KIND, check_compliance, licence_usage

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

ESTATE: dict[str, Any] = {
    "source": "import:assets",
    "cis": [
        {"ref": "ann", "class": "Person", "name": "Ann Owner", "email": "ann@example.com"},
        {"ref": "ops", "class": "Team", "name": "Ops"},
        {"ref": "office", "class": "License", "name": "office-e3", "product": "Office", "vendor": "Contoso",
         "entitlements": 2, "expires": "2027-12-31"},
        {"ref": "db", "class": "License", "name": "db-enterprise", "product": "DB", "entitlements": 5},
        {"ref": "free", "class": "License", "name": "free-tool", "product": "Tool"},
        {"ref": "h1", "class": "Server", "hostname": "h1", "fqdn": "h1.example.com"},
        {"ref": "h2", "class": "Server", "hostname": "h2", "fqdn": "h2.example.com"},
        {"ref": "i1", "class": "SoftwareInstall", "host_name": "h1", "product": "Office"},
        {"ref": "i2", "class": "SoftwareInstall", "host_name": "h2", "product": "Office"},
        {"ref": "svc", "class": "Service", "name": "Payroll", "service_type": "business", "tier": 1},
    ],
    "relationships": [
        {"type": "OWNED_BY", "from": "office", "to": "ann"},
        {"type": "SUPPORTED_BY", "from": "db", "to": "ops"},
        {"type": "LICENSED_BY", "from": "i1", "to": "office"},
        {"type": "LICENSED_BY", "from": "i2", "to": "office"},
        {"type": "LICENSED_BY", "from": "h1", "to": "office"},
        {"type": "LICENSED_BY", "from": "h2", "to": "db"},
        {"type": "RUNS_ON", "from": "i1", "to": "h1"},
        {"type": "DEPENDS_ON", "from": "svc", "to": "i1"},
    ],
}


def _load(store: GraphStore, doc: dict[str, Any], at: datetime = T0) -> dict[str, str]:
    return ingest(store, Batch.from_dict(doc), now=at).ci_ids


def test_usage_counts_installs_and_hosts(store: GraphStore) -> None:
    ids = _load(store, ESTATE)
    usage = {u.name: u for u in licence_usage(store)}
    office = usage["office-e3"]
    assert (office.entitled, office.used, office.installs, office.hosts) == (2, 3, 2, 1)
    assert (office.balance, office.status, office.expires, office.product) == (-1, "over", "2027-12-31", "Office")
    assert sorted(office.consumers) == sorted([ids["i1"], ids["i2"], ids["h1"]])
    db = usage["db-enterprise"]
    assert (db.used, db.balance, db.status) == (1, 4, "under")
    assert (usage["free-tool"].used, usage["free-tool"].status, usage["free-tool"].balance) == (0, "unknown", None)
    assert [u.name for u in licence_usage(store, product="office")] == ["office-e3"]
    assert office.to_dict()["status"] == "over"


def test_over_use_raises_one_task_for_the_owner(store: GraphStore) -> None:
    ids = _load(store, ESTATE)
    cfg = parse_config({"channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}})
    dry = check_compliance(store, T0, cfg, dry_run=True)
    assert (dry.raised, dry.over) == (1, 1) and store.list_tasks(TaskQuery()) == []

    first = check_compliance(store, T0, cfg)
    assert (first.raised, first.over) == (1, 1)
    [task] = store.list_tasks(TaskQuery(kinds=[COMPLIANCE_KIND]))
    assert task.ci_id == ids["office"] and task.state == "open"
    assert task.assignee.person_id == ids["ann"] and task.assignee.reason == "owner of office-e3"
    assert task.details["used"] == 3 and task.details["entitled"] == 2 and task.details["over_by"] == 1
    assert [s["name"] for s in task.services_at_risk] == ["Payroll"]
    assert task.services_at_risk[0]["state"] == "degraded" and task.details["impact"] == "medium"
    assert task.priority == "P3"  # a tier-1 service degraded: impact medium; x urgency medium
    assert first.queued >= 1
    assert {m.task_id for m in store.list_messages()} == {task.id}

    # Re-running, later the same day or the next, never raises a second task.
    again = check_compliance(store, T0 + timedelta(hours=2), cfg)
    later = check_compliance(store, T0 + timedelta(days=1), cfg)
    assert (again.raised, again.unchanged, later.raised, later.unchanged) == (0, 1, 0, 1)
    assert len(store.list_tasks(TaskQuery(kinds=[COMPLIANCE_KIND]))) == 1

    # One more install: the task is updated with the new count.
    _load(store, {"source": "import:assets", "cis": [
        {"ref": "i3", "class": "SoftwareInstall", "host_name": "h3", "product": "Office"},
        {"ref": "office", "class": "License", "name": "office-e3", "product": "Office"}],
        "relationships": [{"type": "LICENSED_BY", "from": "i3", "to": "office"}]}, T0 + timedelta(days=2))
    grown = check_compliance(store, T0 + timedelta(days=2), cfg)
    assert grown.updated == 1
    updated = store.get_task(task.id)
    assert updated is not None and updated.details["used"] == 4 and "4 of 2 seats" in updated.transitions[-1].note

    # More seats bought: back within the entitlement resolves the task.
    _load(store, {"source": "import:assets", "cis": [
        {"class": "License", "name": "office-e3", "product": "Office", "entitlements": 10}]}, T0 + timedelta(days=3))
    fixed = check_compliance(store, T0 + timedelta(days=3), cfg)
    assert fixed.resolved == 1
    done = store.get_task(task.id)
    assert done is not None and done.state == "resolved"
    assert done.transitions[-1].note == "back within its entitlement: 4 of 10 seats used"
    assert check_compliance(store, T0 + timedelta(days=4), cfg).summary()["raised"] == 0
