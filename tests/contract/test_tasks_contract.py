"""The TaskStore contract on every store: tasks, outbox, leases and the expiry range filter.

Every time is injected (``now``); nothing sleeps on the wall clock. Races run on separate store
objects (separate connections or drivers, as two processes would have) released together by a barrier.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore
from cmdb.store.tasks import (
    Assignment,
    InvalidTransitionError,
    TaskNotFoundError,
    TaskQuery,
    backoff_delay,
    new_message,
    new_task,
)

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def second_store(store: GraphStore) -> GraphStore:
    """Another connection to the same store, as a second process would hold."""
    from cmdb.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return SqliteStore(store.path)
    from cmdb.store.neo4j import Neo4jStore

    assert isinstance(store, Neo4jStore)
    return Neo4jStore(store._uri, store.user, store._password, store.database)


def race(stores: list[GraphStore], work: Callable[[GraphStore], Any]) -> list[Any]:
    barrier = threading.Barrier(len(stores))
    results: list[Any] = [None] * len(stores)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(stores[i])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def cert_task(ci: str = "ci-1", expiry: str = "2027-04-01", **kw: Any) -> Any:
    kw.setdefault("priority", "P3")
    kw.setdefault("due", "2027-04-01T00:00:00.000000Z")
    return new_task("certificate_expiry", ci, expiry, now=T0, actor="scheduler", **kw)


def test_raise_is_unique_on_kind_ci_expiry(store: GraphStore) -> None:
    first, created = store.raise_task(cert_task(threshold="30d"))
    assert created and first.state == "open" and first.transitions[0].to_state == "open"
    again, created = store.raise_task(cert_task(threshold="7d", priority="P1"))
    assert not created and again.id == first.id and again.threshold == "30d" and again.priority == "P3"
    other, created = store.raise_task(cert_task(expiry="2028-04-01"))
    assert created and other.id != first.id
    _, created = store.raise_task(new_task("licence_expiry", "ci-1", "2027-04-01", now=T0, actor="s",
                                                 priority="P4", due="2027-04-01"))
    assert created
    assert len(store.list_tasks(TaskQuery())) == 3
    found = store.find_tasks([("certificate_expiry", "ci-1", "2027-04-01"), ("licence_expiry", "ci-1", "2027-04-01"),
                              ("certificate_expiry", "ci-9", "2027-04-01")])
    assert set(found) == {("certificate_expiry", "ci-1", "2027-04-01"), ("licence_expiry", "ci-1", "2027-04-01")}
    assert store.get_task(first.id) == first
    assert store.get_task("task-nope") is None


def test_racing_raisers_create_each_task_once(store: GraphStore) -> None:
    stores = [store, *[second_store(store) for _ in range(3)]]
    try:
        for round_ in range(5):
            def work(s: GraphStore, r: int = round_) -> bool:
                return s.raise_task(cert_task(ci=f"ci-race-{r}"))[1]

            created = race(stores, work)
            assert sorted(created) == [False, False, False, True], created
    finally:
        for s in stores[1:]:
            s.close()
    assert len(store.list_tasks(TaskQuery())) == 5


def test_transitions_are_recorded_and_checked(store: GraphStore) -> None:
    task, _ = store.raise_task(cert_task())
    acked = store.transition_task(task.id, "acknowledged", actor="ann@example.com", now=T0 + timedelta(hours=1),
                                  note="on it")
    assert acked.state == "acknowledged"
    done = store.transition_task(task.id, "resolved", actor="scheduler", now=T0 + timedelta(days=2),
                                 note="renewed by cert-2")
    assert [(t.from_state, t.to_state, t.actor, t.note) for t in done.transitions] == [
        (None, "open", "scheduler", "raised"),
        ("open", "acknowledged", "ann@example.com", "on it"),
        ("acknowledged", "resolved", "scheduler", "renewed by cert-2"),
    ]
    assert store.get_task(task.id) == done
    with pytest.raises(InvalidTransitionError, match="is resolved; it cannot become cancelled"):
        store.transition_task(task.id, "cancelled", actor="x", now=T0)
    with pytest.raises(InvalidTransitionError, match="unknown task state"):
        store.transition_task(task.id, "closed", actor="x", now=T0)
    with pytest.raises(TaskNotFoundError):
        store.transition_task("task-none", "resolved", actor="x", now=T0)
    assert store.get_task(task.id) == done  # a refused transition changed nothing


def test_update_records_an_entry(store: GraphStore) -> None:
    task, _ = store.raise_task(cert_task(threshold="30d"))
    who = Assignment(person_id="ci-ann", person_name="Ann", person_email="ann@example.com",
                     reason="owner of the certificate")
    updated = store.update_task(task.id, actor="scheduler", now=T0 + timedelta(days=23), note="7 days left",
                                priority="P2", threshold="7d", assignee=who,
                                services_at_risk=[{"id": "svc-1", "name": "Checkout", "tier": 1}])
    assert (updated.priority, updated.threshold, updated.assignee.person_email) == ("P2", "7d", "ann@example.com")
    last = updated.transitions[-1]
    assert last.kind == "update" and last.from_state == last.to_state == "open"
    assert "priority P3 -> P2" in last.note and "threshold 30d -> 7d" in last.note and "-> Ann" in last.note
    assert store.get_task(task.id) == updated
    same = store.update_task(task.id, actor="scheduler", now=T0 + timedelta(days=24), priority="P2")
    assert len(same.transitions) == len(updated.transitions)  # nothing changed, nothing recorded


def test_list_filters(store: GraphStore) -> None:
    ann = Assignment(person_id="ci-ann", person_name="Ann", reason="owner")
    ops = Assignment(team_id="ci-ops", team_name="Ops", reason="support team")
    a, _ = store.raise_task(cert_task(ci="c-a", due="2027-03-05T00:00:00.000000Z", assignee=ann))
    b, _ = store.raise_task(cert_task(ci="c-b", due="2027-03-20T00:00:00.000000Z", assignee=ops))
    c, _ = store.raise_task(new_task("licence_compliance", "l-c", "", now=T0, actor="s", priority="P3",
                                     due="2027-03-02T00:00:00.000000Z", assignee=ann))
    store.transition_task(c.id, "resolved", actor="ann", now=T0)

    def ids(**kw: Any) -> list[str]:
        return [t.id for t in store.list_tasks(TaskQuery(**kw))]

    assert ids() == [c.id, a.id, b.id]  # by due date
    assert ids(person="ci-ann") == [c.id, a.id]
    assert ids(team="ci-ops") == [b.id]
    assert ids(states=["open"]) == [a.id, b.id]
    assert ids(states=["resolved", "cancelled"]) == [c.id]
    assert ids(kinds=["licence_compliance"]) == [c.id]
    assert ids(ci_id="c-b") == [b.id]
    assert ids(overdue_at=datetime(2027, 3, 10, tzinfo=UTC)) == [a.id]  # c is overdue but resolved
    assert ids(overdue_at=datetime(2027, 3, 1, tzinfo=UTC)) == []
    assert ids(limit=1, offset=1) == [a.id]


def test_outbox_lifecycle_with_backoff_and_dead_letter(store: GraphStore) -> None:
    m1 = new_message("email", "ann@example.com", "Certificate expires", "body", "task-1:raised", now=T0)
    m2 = new_message("webhook", "jira", "Certificate expires", "{}", "task-1:raised:jira", now=T0)
    assert store.enqueue_messages([m1, m2]) == [True, True]
    dup = new_message("email", "ann@example.com", "again", "body", "task-1:raised", now=T0)
    assert store.enqueue_messages([dup]) == [False]
    assert len(store.list_messages()) == 2

    claimed = store.claim_messages(T0, limit=10, hold_seconds=60)
    assert {m.id for m in claimed} == {m1.id, m2.id} and all(m.attempts == 1 for m in claimed)
    assert store.claim_messages(T0 + timedelta(seconds=30)) == []  # held by the first claim
    store.mark_sent(m1.id, T0 + timedelta(seconds=1))
    sent = store.get_message(m1.id)
    assert sent is not None and sent.state == "sent" and sent.sent_at is not None

    retry_at = T0 + backoff_delay(1, base_seconds=30)
    failed = store.mark_failed(m2.id, "connection refused", T0 + timedelta(seconds=1), retry_at)
    assert failed.state == "pending" and failed.last_error == "connection refused"
    assert store.claim_messages(retry_at - timedelta(seconds=1)) == []
    again = store.claim_messages(retry_at)
    assert [m.attempts for m in again] == [2]
    dead = store.mark_failed(m2.id, "HTTP 500", retry_at, None)
    assert dead.state == "dead"
    assert [m.id for m in store.list_messages(state="dead")] == [m2.id]
    assert store.claim_messages(retry_at + timedelta(days=1)) == []

    revived = store.retry_message(m2.id, retry_at + timedelta(hours=1))
    assert (revived.state, revived.attempts) == ("pending", 0)
    assert [m.id for m in store.claim_messages(retry_at + timedelta(hours=1))] == [m2.id]
    with pytest.raises(TaskNotFoundError, match="was delivered"):
        store.retry_message(m1.id, T0)
    with pytest.raises(TaskNotFoundError):
        store.mark_sent("msg-none", T0)
    assert [backoff_delay(n, 30, 3600).total_seconds() for n in (1, 2, 3, 10)] == [30, 60, 120, 3600]


def test_racing_claimers_take_each_message_once(store: GraphStore) -> None:
    store.enqueue_messages([new_message("email", f"p{i}@example.com", "s", "b", f"k{i}", now=T0) for i in range(30)])
    stores = [store, second_store(store), second_store(store)]
    try:
        taken = race(stores, lambda s: [m.id for m in s.claim_messages(T0, limit=12)])
    finally:
        for s in stores[1:]:
            s.close()
    flat = [i for ids in taken for i in ids]
    assert len(flat) == len(set(flat)) == 30


def test_leases_two_holders_and_expiry(store: GraphStore) -> None:
    assert store.acquire_lease("job:expiry", "sched-a", 60, T0)
    assert not store.acquire_lease("job:expiry", "sched-b", 60, T0 + timedelta(seconds=10))
    assert store.acquire_lease("job:expiry", "sched-a", 60, T0 + timedelta(seconds=20))  # ours: extended
    lease = store.get_lease("job:expiry")
    assert lease is not None and lease.holder == "sched-a"
    assert not store.acquire_lease("job:expiry", "sched-b", 60, T0 + timedelta(seconds=79))
    assert store.renew_lease("job:expiry", "sched-a", 60, T0 + timedelta(seconds=70))
    assert not store.renew_lease("job:expiry", "sched-b", 60, T0 + timedelta(seconds=70))
    # sched-a goes silent: once the lease has lapsed sched-b takes it, and sched-a cannot renew it.
    assert store.acquire_lease("job:expiry", "sched-b", 60, T0 + timedelta(seconds=131))
    assert not store.renew_lease("job:expiry", "sched-a", 60, T0 + timedelta(seconds=132))
    store.release_lease("job:expiry", "sched-a")  # not its lease: nothing happens
    assert store.get_lease("job:expiry").holder == "sched-b"  # type: ignore[union-attr]
    store.release_lease("job:expiry", "sched-b")
    assert store.get_lease("job:expiry") is None
    assert store.acquire_lease("job:expiry", "sched-a", 60, T0 + timedelta(seconds=133))
    # Cut to a moment already past (the scheduler's job overran its occurrence): it stays, lapsed at that
    # moment, so a taker whose clock read earlier still finds it held, and a later one takes it.
    assert store.renew_lease("job:expiry", "sched-a", -3, T0 + timedelta(seconds=140))
    assert store.get_lease("job:expiry") is not None
    assert not store.acquire_lease("job:expiry", "sched-b", 60, T0 + timedelta(seconds=136))
    assert store.acquire_lease("job:expiry", "sched-b", 60, T0 + timedelta(seconds=137))


def test_racing_lease_takers_one_wins(store: GraphStore) -> None:
    stores = [store, *[second_store(store) for _ in range(3)]]
    try:
        for r in range(3):
            def take(s: GraphStore, r: int = r) -> bool:
                return s.acquire_lease(f"job-{r}", f"holder-{id(s)}", 60, T0)

            won = race(stores, take)
            assert sorted(won) == [False, False, False, True]
    finally:
        for s in stores[1:]:
            s.close()


def _estate(store: GraphStore) -> dict[str, str]:
    cis: list[dict[str, Any]] = []
    for i, days in enumerate([-5, 3, 10, 29, 30, 31, 89, 200]):
        cis.append({"ref": f"cert{i}", "class": "Certificate", "subject": f"CN=svc{i}.example.com",
                    "serial": f"s{i}", "issuer": "CN=CA", "not_after": (T0 + timedelta(days=days)).isoformat()})
    cis.append({"ref": "nocert", "class": "Certificate", "subject": "CN=none", "serial": "x", "issuer": "CN=CA"})
    for i, days in enumerate([20, 45, 400]):
        cis.append({"ref": f"lic{i}", "class": "License", "name": f"lic-{i}", "product": "Office",
                    "entitlements": 10, "expires": (T0 + timedelta(days=days)).date().isoformat()})
    cis.append({"ref": "host", "class": "Server", "hostname": "h1", "fqdn": "h1.example.com"})
    result = ingest(store, Batch.from_dict({"source": "manual", "cis": cis}), now=T0)
    return result.ci_ids


def test_expiring_cis_range(store: GraphStore) -> None:
    ids = _estate(store)
    got = store.expiring_cis(T0 + timedelta(days=30))
    assert [(e.id, e.cls) for e in got] == [
        (ids["cert0"], "Certificate"), (ids["cert1"], "Certificate"), (ids["cert2"], "Certificate"),
        (ids["lic0"], "License"), (ids["cert3"], "Certificate"), (ids["cert4"], "Certificate")]
    assert got[0].expiry == (T0 - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert got[3].expiry == (T0 + timedelta(days=20)).date().isoformat() and got[3].name == "lic-0"
    window = store.expiring_cis(T0 + timedelta(days=90), since=T0 + timedelta(days=30))
    assert [e.id for e in window] == [ids["cert4"], ids["cert5"], ids["lic1"], ids["cert6"]]
    certs_only = store.expiring_cis(T0 + timedelta(days=90), classes={"Certificate": "not_after"})
    assert {e.cls for e in certs_only} == {"Certificate"} and len(certs_only) == 7
    with pytest.raises(BadInputError, match=r"no expiry index for Server\.not_after"):
        store.expiring_cis(T0, classes={"Server": "not_after"})

    # A renewal moves a certificate out of the window; a retired CI is left out unless asked for.
    ingest(store, Batch.from_dict({"source": "manual", "cis": [
        {"class": "Certificate", "subject": "CN=svc1.example.com", "serial": "s1", "issuer": "CN=CA",
         "not_after": (T0 + timedelta(days=400)).isoformat()}]}), now=T0)
    assert ids["cert1"] not in {e.id for e in store.expiring_cis(T0 + timedelta(days=30))}


def test_expiring_cis_uses_the_index(store: GraphStore) -> None:
    plan = " ".join(store.explain_expiring())  # type: ignore[attr-defined]
    assert "ci_expiry_at_certificate" in plan or "NodeIndexSeekByRange" in plan, plan


def test_dump_and_restore_keep_tasks_outbox_and_leases(store: GraphStore, tmp_path: Any) -> None:
    from cmdb.migrate import compare_stores
    from cmdb.store.sqlite import SqliteStore

    _estate(store)
    task, _ = store.raise_task(cert_task())
    store.transition_task(task.id, "acknowledged", actor="ann", now=T0)
    store.enqueue_messages([new_message("email", "a@example.com", "s", "b", "k1", now=T0)])
    store.acquire_lease("job", "sched-a", 60, T0)
    copy = SqliteStore(tmp_path / "copy.db")
    try:
        copy.restore(store.dump())
        assert compare_stores(store, copy) == []
        assert copy.get_task(task.id) == store.get_task(task.id)
        assert [m.idempotency_key for m in copy.list_messages()] == ["k1"]
        assert copy.get_lease("job") == store.get_lease("job")
        assert not copy.raise_task(cert_task())[1]
        assert len(copy.expiring_cis(T0 + timedelta(days=30))) == 6
        store.clear()
        assert store.list_tasks(TaskQuery()) == [] and store.list_messages() == [] and store.get_lease("job") is None
        store.restore(copy.dump())
        assert compare_stores(store, copy) == []
        assert store.get_task(task.id) == copy.get_task(task.id)
        assert not store.raise_task(cert_task())[1]
        assert len(store.expiring_cis(T0 + timedelta(days=30))) == 6
        copy.transition_task(task.id, "resolved", actor="ann", now=T0)
        assert [d for d in compare_stores(store, copy) if d.startswith(f"task {task.id}")]
    finally:
        copy.close()


def test_get_cis_brief_is_get_cis_without_provenance(store: GraphStore) -> None:
    ids = _estate(store)
    wanted = [ids["cert1"], ids["lic0"], ids["host"], "ci-none"]
    full = store.get_cis(wanted)
    brief = store.get_cis_brief(wanted)
    assert set(brief) == set(full) == {ids["cert1"], ids["lic0"], ids["host"]}
    for ci_id, c in full.items():
        b = brief[ci_id]
        assert (b.id, b.cls, b.name, b.status, b.attrs, b.created_at, b.updated_at) == (
            c.id, c.cls, c.name, c.status, c.attrs, c.created_at, c.updated_at)
        assert b.provenance == {} and b.sightings == {} and c.provenance
    assert store.get_cis_brief([]) == {}


def test_ci_labels_are_class_and_display_name(store: GraphStore) -> None:
    ids = _estate(store)
    wanted = [*ids.values(), "ci-none"]
    full = store.get_cis(wanted)
    labels = store.ci_labels(wanted)
    assert labels == {i: (c.cls, c.name or i) for i, c in full.items()} and len(labels) == len(set(ids.values()))
    assert store.ci_labels([]) == {}


RAISER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from cmdb.store import open_store
from cmdb.store.tasks import new_task
url, ready, go, n, backwards = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
store = open_store(url)
now = datetime(2027, 3, 1, tzinfo=UTC)
tasks = [new_task("certificate_expiry", f"ci-{i}", "2027-04-01", now=now, actor=url, priority="P3", due="x")
         for i in (reversed(range(n)) if backwards else range(n))]
ready.touch()
while not go.exists():
    time.sleep(0.005)
print(sum(store.raise_task(t)[1] for t in tasks))
store.close()
"""


def test_two_processes_raise_each_task_once(store: GraphStore, tmp_path: Any) -> None:
    """Two real processes race over the same 1000 tasks, one from each end: every task is created by exactly
    one of them (they meet in the middle, where both try the same keys at once)."""
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ)
    if not store.url.startswith("sqlite"):
        env["CMDB_NEO4J_PASSWORD"] = store._password  # type: ignore[attr-defined]
    procs, readies = [], []
    go = tmp_path / "go"
    for k in range(2):
        ready = tmp_path / f"ready-{k}"
        readies.append(ready)
        procs.append(subprocess.Popen([sys.executable, "-c", RAISER, store.url, str(ready), str(go), "1000", str(k)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sum(int(o) for o, _ in outs) == 1000
    assert len(store.list_tasks(TaskQuery(limit=5000))) == 1000
