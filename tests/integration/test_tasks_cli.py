"""``cmdb tasks`` and ``cmdb licences`` as a user runs them: real processes on a real SQLite file.

The clock is injected with ``--at``; tasks not raised by a command are put in place through the store API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cmdb.store.sqlite import SqliteStore
from cmdb.store.tasks import Assignment, new_task
from tests.integration.test_cli import as_json, cmdb

ESTATE = """\
source: import:assets
cis:
  - {ref: ann, class: Person, name: Ann Owner, email: ann@example.com}
  - {ref: ops, class: Team, name: Ops}
  - {ref: office, class: License, name: office-e3, product: Office, entitlements: 1, expires: "2027-12-31"}
  - {ref: i1, class: SoftwareInstall, host_name: h1, product: Office}
  - {ref: i2, class: SoftwareInstall, host_name: h2, product: Office}
  - {ref: cert, class: Certificate, subject: CN=shop.example.com, serial: "01", issuer: CN=CA,
     not_after: "2027-03-04T00:00:00Z"}
relationships:
  - {type: OWNED_BY, from: office, to: ann}
  - {type: LICENSED_BY, from: i1, to: office}
  - {type: LICENSED_BY, from: i2, to: office}
"""
AT = "2027-03-01T09:00:00Z"
T0 = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture()
def estate(tmp_path: Path) -> Path:
    (tmp_path / "estate.yaml").write_text(ESTATE)
    cmdb(tmp_path, "load", str(tmp_path / "estate.yaml"))
    return tmp_path


def test_licences_table_json_and_check(estate: Path) -> None:
    data = as_json(cmdb(estate, "licences", "--json"))
    [office] = data["licences"]
    assert (office["product"], office["entitled"], office["used"], office["balance"], office["status"],
            office["expires"]) == ("Office", 1, 2, -1, "over", "2027-12-31")
    table = cmdb(estate, "licences").stdout
    assert "office-e3" in table and "1 over" in table and "2027-12-31" in table
    dry = as_json(cmdb(estate, "licences", "--check", "--dry-run", "--at", AT, "--json"))
    assert dry["compliance"]["raised"] == 1 and as_json(cmdb(estate, "tasks", "list", "--json"))["items"] == []
    done = as_json(cmdb(estate, "licences", "--check", "--at", AT, "--json"))
    assert done["compliance"]["raised"] == 1
    again = as_json(cmdb(estate, "licences", "--check", "--at", AT, "--json"))
    assert again["compliance"]["raised"] == 0 and again["compliance"]["unchanged"] == 1
    [task] = as_json(cmdb(estate, "tasks", "list", "--mine", "ann@example.com", "--json"))["items"]
    assert task["kind"] == "licence_compliance" and task["assignee"]["reason"] == "owner of office-e3"


def test_tasks_list_filters_and_transitions(estate: Path) -> None:
    cmdb(estate, "licences", "--check", "--at", AT)
    store = SqliteStore(estate / "cli.db")
    try:
        ops = store.find_by_name("Ops")[0]
        cert = store.find_by_name("CN=shop.example.com")
        t0 = new_task("certificate_expiry", cert[0], "2027-03-04T00:00:00Z", now=T0, actor="scheduler", priority="P2",
            due="2027-03-04T00:00:00.000000Z", ci_name="CN=shop.example.com", threshold="7d",
            assignee=Assignment(team_id=ops, team_name="Ops", reason="support team of CN=shop.example.com"))
        queued = new_task("certificate_expiry", "ci-gone", "2027-05-01T00:00:00Z", now=T0, actor="scheduler",
                          priority="P4", due="2027-05-01T00:00:00.000000Z",
                          assignee=Assignment(team_name="ops-queue", queue="ops-queue", reason="default queue"))
        store.raise_task(t0)
        store.raise_task(queued)
    finally:
        store.close()

    listed = as_json(cmdb(estate, "tasks", "list", "--json"))["items"]
    assert [t["kind"] for t in listed] == ["certificate_expiry", "licence_compliance", "certificate_expiry"]
    def ids(*args: str) -> list[str]:
        return [t["id"] for t in as_json(cmdb(estate, "tasks", "list", *args, "--json"))["items"]]

    assert ids("--team", "Ops") == [t0.id]
    assert ids("--team", "ops-queue") == [queued.id]
    overdue = as_json(cmdb(estate, "tasks", "list", "--overdue", "--at", "2027-03-10T00:00:00Z", "--json"))["items"]
    assert [t["id"] for t in overdue] == [t0.id]
    assert as_json(cmdb(estate, "tasks", "list", "--overdue", "--at", AT, "--json"))["items"] == []
    table = cmdb(estate, "tasks", "list").stdout
    assert t0.id in table and "3 task(s)" in table

    acked = as_json(cmdb(estate, "tasks", "ack", t0.id, "--note", "ordering it", "--actor", "bob", "--at",
                         "2027-03-02T08:00:00Z", "--json"))
    assert acked["state"] == "acknowledged"
    cmdb(estate, "tasks", "resolve", t0.id, "--note", "renewed by hand", "--actor", "bob", "--at",
         "2027-03-03T08:00:00Z")
    shown = as_json(cmdb(estate, "tasks", "show", t0.id, "--json"))
    assert [(t["from_state"], t["to_state"], t["actor"], t["note"]) for t in shown["transitions"]][1:] == [
        ("open", "acknowledged", "bob", "ordering it"), ("acknowledged", "resolved", "bob", "renewed by hand")]
    assert shown["transitions"][2]["at"].startswith("2027-03-03T08:00")
    text = cmdb(estate, "tasks", "show", t0.id).stdout
    assert "support team of CN=shop.example.com" in text and "renewed by hand" in text

    refused = cmdb(estate, "tasks", "cancel", t0.id, ok=False)
    assert refused.returncode == 2 and "is resolved; it cannot become cancelled" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = cmdb(estate, "tasks", "show", "task-nope", ok=False)
    assert missing.returncode == 3 and "no task task-nope" in missing.stderr
    bad = cmdb(estate, "tasks", "list", "--state", "closed", ok=False)
    assert bad.returncode == 2 and "--state 'closed'" in bad.stderr
    assert ids("--state", "resolved") == [t0.id]
    cmdb(estate, "tasks", "cancel", queued.id, "--note", "CI gone")
    assert len(ids()) == 1

