"""Tasks, the outbox and licences over the API: the same store calls as ``cmdb tasks`` and ``cmdb licences``.

Tasks are raised in the sample store with the task store's own ``raise_task`` (as the expiry cycle
does); one sits on a CI of partition ``hidden`` that a ``default``-partition token must not find.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from cmdb.store.tasks import Assignment, Task, new_message, new_task
from tests.api.conftest import TokenFor

V1 = "/api/v1"


def _raise(store: SqliteStore, ref: str, kind: str, due: datetime, **kw: Any) -> Task:
    ci = store.get_ci(ref) or store.get_ci(next(iter(store.find_by_name(ref))))
    assert ci is not None
    task = new_task(kind, ci.id, "2027-01-01", now=datetime.now(UTC), actor="test", priority="P2",
                    due=due.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), ci_name=ref, **kw)
    return store.raise_task(task)[0]


@pytest.fixture(scope="module")
def tasks(sample_store: SqliteStore) -> dict[str, Task]:
    ingest(sample_store, Batch.from_dict({"source": "import:hidden", "cis": [
        {"ref": "x", "class": "Application", "name": "secret-app", "partition": "hidden"}]}))
    anna = next(iter(sample_store.find_by_name("Anna Keller")))
    now = datetime.now(UTC)
    return {
        "late": _raise(sample_store, "sw-core-fra-1", "certificate_expiry", now - timedelta(days=1),
                       assignee=Assignment(person_id=anna, person_name="Anna Keller",
                                           person_email="anna.keller@example.com", reason="owner")),
        "later": _raise(sample_store, "db-fra-01", "licence_compliance", now + timedelta(days=10)),
        "hidden": _raise(sample_store, "secret-app", "certificate_expiry", now + timedelta(days=5)),
    }


def ids(r: Any) -> set[str]:
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["items"]}


def test_list_filters_and_pages(client: TestClient, tasks: dict[str, Task]) -> None:
    late, later, hidden = tasks["late"].id, tasks["later"].id, tasks["hidden"].id
    assert {late, later, hidden} <= ids(client.get(f"{V1}/tasks"))
    assert ids(client.get(f"{V1}/tasks", params={"mine": "anna.keller@example.com"})) == {late}
    assert late in ids(client.get(f"{V1}/tasks", params={"overdue": True}))
    assert later not in ids(client.get(f"{V1}/tasks", params={"overdue": True}))
    assert ids(client.get(f"{V1}/tasks", params={"kind": "licence_compliance"})) == {later}
    assert ids(client.get(f"{V1}/tasks", params={"ci": "db-fra-01"})) == {later}
    assert not ids(client.get(f"{V1}/tasks", params={"state": "resolved", "kind": "licence_compliance"}))
    first = client.get(f"{V1}/tasks", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    second = client.get(f"{V1}/tasks", params={"limit": 1, "offset": 1}).json()
    assert second["items"][0]["id"] != first["items"][0]["id"]
    bad = client.get(f"{V1}/tasks", params={"state": "closed"})
    assert bad.status_code == 422 and "closed" in bad.json()["detail"]
    assert client.get(f"{V1}/tasks", params={"mine": "nobody@nowhere.example"}).status_code == 404


def test_a_task_on_a_hidden_ci_is_missing(client: TestClient, token_for: TokenFor, tasks: dict[str, Task]) -> None:
    limited = {"Authorization": f"Bearer {token_for('operator', partitions=['default'])}"}
    hidden = tasks["hidden"].id
    assert hidden not in ids(client.get(f"{V1}/tasks", headers=limited))
    assert tasks["late"].id in ids(client.get(f"{V1}/tasks", headers=limited))
    gone = client.get(f"{V1}/tasks/{hidden}", headers=limited)
    missing = client.get(f"{V1}/tasks/task-0000000000", headers=limited)
    assert gone.status_code == missing.status_code == 404
    assert gone.json()["detail"].replace(hidden, "X") == missing.json()["detail"].replace("task-0000000000", "X")
    assert client.post(f"{V1}/tasks/{hidden}/ack", headers=limited).status_code == 404
    assert client.get(f"{V1}/tasks/{hidden}").json()["state"] == "open"  # untouched


def test_transitions_record_the_token_and_the_note(client: TestClient, token_for: TokenFor,
                                                   tasks: dict[str, Task]) -> None:
    tid = tasks["later"].id
    viewer = {"Authorization": f"Bearer {token_for('viewer')}"}
    assert client.post(f"{V1}/tasks/{tid}/ack", headers=viewer).status_code == 403
    r = client.post(f"{V1}/tasks/{tid}/ack", json={"note": "on it"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    last = r.json()["transitions"][-1]
    assert (last["actor"], last["note"], last["to_state"]) == ("t0-admin", "on it", "acknowledged")
    assert client.post(f"{V1}/tasks/{tid}/resolve").json()["state"] == "resolved"
    again = client.post(f"{V1}/tasks/{tid}/cancel")
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{V1}/tasks/{tid}").json()["state"] == "resolved"


def test_outbox_and_retry(client: TestClient, sample_store: SqliteStore, token_for: TokenFor) -> None:
    now = datetime.now(UTC)
    msg = new_message("email", "ops@example.com", "expiring", "{}", "api-test-1", now=now)
    sample_store.enqueue_messages([msg])
    sample_store.mark_failed(msg.id, "refused", now, None)  # no retry time: dead
    assert client.get(f"{V1}/outbox", params={"state": "dead"}).json()[0]["id"] == msg.id
    viewer = {"Authorization": f"Bearer {token_for('viewer')}"}
    assert client.get(f"{V1}/outbox", headers=viewer).status_code == 403
    r = client.post(f"{V1}/outbox/{msg.id}/retry")
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["attempts"] == 0
    assert msg.id in {m["id"] for m in client.get(f"{V1}/outbox", params={"state": "pending"}).json()}
    assert client.post(f"{V1}/outbox/msg-nope/retry").status_code == 404
    assert client.get(f"{V1}/outbox", params={"state": "lost"}).status_code == 422


def test_licences_as_the_cli_shows_them(client: TestClient, sample_store: SqliteStore, token_for: TokenFor) -> None:
    from impact.licences import licence_usage

    got = client.get(f"{V1}/licences").json()["licences"]
    assert got == [u.to_dict() for u in licence_usage(sample_store)] and got
    assert {"entitled", "used", "balance", "status", "expires"} <= set(got[0])
    elsewhere = {"Authorization": f"Bearer {token_for('viewer', partitions=['hidden'])}"}
    assert client.get(f"{V1}/licences", headers=elsewhere).json()["licences"] == []  # theirs are all default


def test_metrics_count_open_tasks_and_the_outbox_at_scrape_time(client: TestClient, sample_store: SqliteStore,
                                                                tasks: dict[str, Task]) -> None:
    def value(text: str, prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    before = client.get("/metrics").text
    opened = value(before, "cmdb_tasks_open{")
    assert opened >= 2 and "cmdb_outbox_messages{" in before
    _raise(sample_store, "db-fra-01", "certificate_expiry", datetime.now(UTC))
    assert value(client.get("/metrics").text, "cmdb_tasks_open{") == opened + 1
    pending = value(client.get("/metrics").text, 'cmdb_outbox_messages{state="pending"}')
    sample_store.enqueue_messages([new_message("email", "a@example.com", "s", "{}", "api-metric-1",
                                               now=datetime.now(UTC))])
    assert value(client.get("/metrics").text, 'cmdb_outbox_messages{state="pending"}') == pending + 1
