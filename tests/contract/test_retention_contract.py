"""Retention on every store: old operational records go, young ones and anything still running or pending
stay, counts come back, a dry run deletes nothing, and the graph, its history and the run ledger are untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.ingest_once import fingerprint, ingest_once
from cmdb.retention import RetentionSettings, prune
from cmdb.store.base import DiscoveryRunRecord, GraphStore, iso
from cmdb.store.health import HealthSnapshot
from cmdb.store.jobs import JobRecord
from cmdb.store.tasks import new_message

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CUT = iso(NOW - 30 * DAY)
DOC = {"source": "import:test", "cis": [{"ref": "a", "class": "Server", "fqdn": "ret-01.example.com"}]}


def ago(days: float) -> str:
    return iso(NOW - days * DAY)


def job(job_id: str, created: float, heartbeat: float, owner: str = "host-a:1:x") -> JobRecord:
    return JobRecord(job_id, "import", "ops", ago(created), owner, ago(heartbeat))


def test_jobs_ended_or_abandoned_long_ago_go_running_and_young_ones_stay(store: GraphStore) -> None:
    for job_id, created in (("old-done", 50), ("old-failed", 45), ("young-done", 2), ("running", 90), ("dead", 70)):
        store.create_job(job(job_id, created, created, owner="host-b:2:y" if job_id == "dead" else "host-a:1:x"))
    assert store.finish_job("old-done", "finished", ago(40), result={"created": 1})
    assert store.finish_job("old-failed", "failed", ago(44), error="bad row")
    assert store.finish_job("young-done", "finished", ago(1))
    assert store.heartbeat_jobs("host-a:1:x", ago(0)) == 1  # "running" started 90 days ago and is alive
    assert store.prune_records("jobs", CUT, dry_run=True) == 3
    assert store.get_job("old-done") is not None  # a dry run deletes nothing
    assert store.prune_records("jobs", CUT) == 3
    assert {j for j in ("old-done", "old-failed", "young-done", "running", "dead") if store.get_job(j)} == {
        "young-done", "running"}
    assert store.prune_records("jobs", CUT) == 0


def test_a_pruned_idempotency_key_is_a_new_key(store: GraphStore) -> None:
    first, rec = ingest_once(store, Batch.from_dict(DOC), "k-old", fingerprint(DOC), now=NOW - 10 * DAY)
    ingest_once(store, Batch.from_dict(DOC), "k-young", fingerprint(DOC), now=NOW - DAY)
    assert first is not None
    again, same = ingest_once(store, Batch.from_dict(DOC), "k-old", fingerprint(DOC), now=NOW - 9 * DAY)
    assert again is None and same.run_id == rec.run_id  # inside its window: replayed, nothing written
    assert store.prune_records("idempotency_keys", iso(NOW - 7 * DAY), dry_run=True) == 1
    assert store.prune_records("idempotency_keys", iso(NOW - 7 * DAY)) == 1
    assert store.idempotency_record("k-old") is None
    assert store.idempotency_record("k-young") is not None
    runs = len(store.runs())
    fresh, rec2 = ingest_once(store, Batch.from_dict(DOC), "k-old", fingerprint(DOC), now=NOW)
    assert fresh is not None and rec2.run_id != rec.run_id  # forgotten: written again, as a new key
    assert len(store.runs()) == runs + 1


def test_outbox_prunes_sent_and_dead_messages_never_pending_ones(store: GraphStore) -> None:
    old_at, young_at = NOW - 100 * DAY, NOW - 5 * DAY
    msgs = {name: new_message("email", "ann@example.com", name, "b", f"key-{name}", now=when)
            for name, when in (("sent", old_at), ("dead", old_at), ("pending", old_at), ("young", young_at))}
    assert store.enqueue_messages(msgs.values()) == [True] * 4
    claimed = {m.subject: m for m in store.claim_messages(old_at, limit=10)}
    assert set(claimed) == {"sent", "dead", "pending"}
    store.mark_sent(claimed["sent"].id, old_at)
    store.mark_failed(claimed["dead"].id, "550 no such user", old_at, None)
    store.mark_failed(claimed["pending"].id, "timeout", old_at, NOW + DAY)  # retrying later: still pending
    store.mark_sent(store.claim_messages(young_at, limit=10)[0].id, young_at)
    assert store.prune_records("outbox", iso(NOW - 90 * DAY)) == 2
    left = {m.subject: m.state for m in store.list_messages()}
    assert left == {"pending": "pending", "young": "sent"}
    assert store.enqueue_messages([new_message("email", "x", "s", "b", "key-young", now=NOW)]) == [False]


def test_health_snapshots_and_discovery_runs_before_the_cut_go(store: GraphStore) -> None:
    for days in (400, 200, 3):
        store.save_health_snapshot(HealthSnapshot(ago(days), 90.0, {"completeness": 95.0}, {}, {}))
    assert store.prune_records("health_snapshots", ago(365)) == 1
    assert [s.at for s in store.health_snapshots()] == [ago(200), ago(3)]
    store.save_discovery_run(DiscoveryRunRecord("old", "scan", ago(400), ago(399), outcomes=[]))
    store.save_discovery_run(DiscoveryRunRecord("unfinished", "scan", ago(400)))  # no end: still going
    store.save_discovery_run(DiscoveryRunRecord("young", "snmp", ago(10), ago(10)))
    assert store.prune_records("discovery_runs", ago(365), dry_run=True) == 1
    assert store.prune_records("discovery_runs", ago(365)) == 1
    assert store.get_discovery_run("old") is None
    assert sorted(r.run_id for r in store.discovery_runs()) == ["unfinished", "young"]


def test_prune_by_the_settings_leaves_the_graph_history_and_ledger_alone(store: GraphStore) -> None:
    ingest_once(store, Batch.from_dict(DOC), "k-1", fingerprint(DOC), now=NOW - 400 * DAY)
    store.create_job(job("j-1", 400, 400))
    assert store.finish_job("j-1", "finished", ago(399))
    store.save_health_snapshot(HealthSnapshot(ago(400), 50.0, {}, {}, {}))
    before = store.stats()
    events = store.events()
    settings = RetentionSettings.model_validate({"health_snapshots": "never"})
    dry = prune(store, settings, now=NOW, dry_run=True)
    assert dry.summary()["kinds"] == {"jobs": 1, "idempotency_keys": 1, "outbox": 0, "health_snapshots": 0,
                                      "discovery_runs": 0}
    assert store.get_job("j-1") is not None and store.idempotency_record("k-1") is not None
    done = prune(store, settings, now=NOW)
    assert done.removed == 2 and not done.dry_run
    assert [k["before"] for k in done.kinds if k["kind"] == "health_snapshots"] == [None]
    assert len(store.health_snapshots()) == 1  # kept for good
    assert store.get_job("j-1") is None and store.idempotency_record("k-1") is None
    assert store.stats() == before and store.events() == events


def test_an_unknown_kind_is_refused(store: GraphStore) -> None:
    with pytest.raises(BadInputError, match="events"):
        store.prune_records("events", CUT)
