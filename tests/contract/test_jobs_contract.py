"""Background jobs on every store: create, end once, heartbeat, abandoned when the heartbeat is stale, listing."""

from __future__ import annotations

import pytest

from cmdb.errors import BadInputError
from cmdb.store.base import GraphStore
from cmdb.store.jobs import JobQuery, JobRecord

T0 = "2026-03-01T10:00:00.000000Z"


def at(second: int) -> str:
    return f"2026-03-01T10:{second // 60:02d}:{second % 60:02d}.000000Z"


def job(job_id: str, created: int = 0, kind: str = "import", actor: str = "ops", owner: str = "host-a:1:x",
        **params: object) -> JobRecord:
    return JobRecord(job_id, kind, actor, at(created), owner, at(created), params=dict(params))


def test_a_job_round_trips_and_ends_once(store: GraphStore) -> None:
    assert store.get_job("import-1") is None
    store.create_job(job("import-1", file="hosts.csv", mapping="assets", dry_run=False))
    got = store.get_job("import-1")
    assert got == job("import-1", file="hosts.csv", mapping="assets", dry_run=False)
    assert got is not None and got.state == "running" and got.params["file"] == "hosts.csv"
    with pytest.raises(BadInputError, match="import-1"):
        store.create_job(job("import-1"))
    summary = {"created": 6, "updated": 0, "run_ids": ["import-1"], "errors": []}
    assert store.finish_job("import-1", "finished", at(9), result=summary)
    done = store.get_job("import-1", stale_before=at(3600))  # an ended job is never abandoned
    assert done is not None and (done.state, done.finished_at, done.result, done.error) == (
        "finished", at(9), summary, None)
    # The first end wins: a late failure (or a second runner) changes nothing.
    assert not store.finish_job("import-1", "failed", at(10), error="late")
    assert not store.finish_job("no-such-job", "finished", at(10))
    again = store.get_job("import-1")
    assert again is not None and again.state == "finished" and again.error is None
    with pytest.raises(BadInputError, match="abandoned"):
        store.finish_job("import-1", "abandoned", at(11))


def test_a_failed_job_keeps_its_error_and_partial_result(store: GraphStore) -> None:
    store.create_job(job("import-2"))
    refused = {"rejected": 2, "errors": ["hosts.csv:4: env: 'prod' is not one of production"]}
    assert store.finish_job("import-2", "failed", at(5), result=refused, error="2 bad row(s); nothing was written")
    got = store.get_job("import-2")
    assert got is not None and got.state == "failed" and got.result == refused
    assert got.error == "2 bad row(s); nothing was written"


def test_a_job_whose_heartbeat_stopped_is_reported_abandoned(store: GraphStore) -> None:
    store.create_job(job("scan-alive", owner="host-a:1:x"))
    store.create_job(job("scan-dead", owner="host-b:2:y"))
    store.create_job(job("scan-done", owner="host-b:2:y"))
    assert store.finish_job("scan-done", "finished", at(1))
    # host-a's runner refreshes its running jobs; host-b died after starting its jobs at 0 s.
    assert store.heartbeat_jobs("host-a:1:x", at(50)) == 1
    assert store.heartbeat_jobs("host-c:3:z", at(50)) == 0
    cutoff = at(30)  # a reader at 60 s with a 30 s limit
    alive, dead, done = (store.get_job(i, stale_before=cutoff) for i in ("scan-alive", "scan-dead", "scan-done"))
    assert alive is not None and alive.state == "running" and alive.heartbeat_at == at(50)
    assert dead is not None and dead.state == "abandoned" and dead.heartbeat_at == at(0)
    assert done is not None and done.state == "finished"
    # Without a limit nothing is judged; abandoned is reported, not stored.
    raw = store.get_job("scan-dead")
    assert raw is not None and raw.state == "running"
    listed = {j.id: j.state for j in store.list_jobs(JobQuery(stale_before=cutoff))}
    assert listed == {"scan-alive": "running", "scan-dead": "abandoned", "scan-done": "finished"}
    assert [j.id for j in store.list_jobs(JobQuery(stale_before=cutoff, state="abandoned"))] == ["scan-dead"]
    assert [j.id for j in store.list_jobs(JobQuery(stale_before=cutoff, state="running"))] == ["scan-alive"]
    assert store.list_jobs(JobQuery(state="abandoned")) == []
    # A runner that was only held up and comes back still records the end.
    assert store.finish_job("scan-dead", "finished", at(70), result={"outcomes": 1})
    back = store.get_job("scan-dead", stale_before=cutoff)
    assert back is not None and back.state == "finished"
    assert store.heartbeat_jobs("host-b:2:y", at(80)) == 0  # no running job of host-b left


def test_jobs_list_newest_first_with_filters_and_keyset_pages(store: GraphStore) -> None:
    for n in range(7):
        store.create_job(job(f"job-{n}", created=n, kind="import" if n % 2 else "scan", actor=f"a{n % 3}"))
    store.create_job(job("job-6b", created=6, kind="scan"))  # same created_at as job-6: id breaks the tie
    assert store.finish_job("job-3", "failed", at(20), error="boom")
    everything = [j.id for j in store.list_jobs(JobQuery(limit=100))]
    assert everything == ["job-6b", "job-6", "job-5", "job-4", "job-3", "job-2", "job-1", "job-0"]
    pages, after = [], None
    while True:
        page = store.list_jobs(JobQuery(limit=3, after=after))
        pages.append([j.id for j in page])
        if len(page) < 3:
            break
        after = (page[-1].created_at, page[-1].id)
    assert pages == [["job-6b", "job-6", "job-5"], ["job-4", "job-3", "job-2"], ["job-1", "job-0"]]
    assert [j.id for j in store.list_jobs(JobQuery(kind="import"))] == ["job-5", "job-3", "job-1"]
    assert [j.id for j in store.list_jobs(JobQuery(actor="a0"))] == ["job-6", "job-3", "job-0"]
    assert [j.id for j in store.list_jobs(JobQuery(state="failed"))] == ["job-3"]
    assert [j.id for j in store.list_jobs(JobQuery(kind="import", state="running"))] == ["job-5", "job-1"]
    assert {j.id for j in store.list_jobs(JobQuery(ids=["job-2", "job-4", "nope"]))} == {"job-2", "job-4"}
    assert store.list_jobs(JobQuery(ids=[])) == []
