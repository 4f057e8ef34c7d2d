"""``GET /jobs`` and the status URLs read from the store: listing, pages, partitions, jobs of other processes.

Each test gets its own SQLite store and app. Jobs of "other processes" are written to the store the
way their runner would (``create_job``/``finish_job``), as another worker or server on the store does.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.store.base import iso
from cmdb.store.jobs import JobRecord
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import TokenFor, make_token_factory
from tests.api.test_imports import finished, upload

V1 = "/api/v1"
DATA = Path(__file__).resolve().parents[1] / "data" / "tabular"
Env = tuple[TestClient, SqliteStore, TokenFor]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    maps = tmp_path / "mappings"
    maps.mkdir()
    shutil.copy(DATA / "servers.map.yaml", maps / "assets.yaml")
    store = SqliteStore(tmp_path / "jobs.db")
    token_for = make_token_factory(store)
    settings = ApiSettings(impact_poll_seconds=0.2, mappings_dir=maps, job_stale_seconds=30)
    with TestClient(create_app(store, settings), headers={"Authorization": f"Bearer {token_for('operator')}"}
                    ) as client:
        yield client, store, token_for
    store.close()


def elsewhere(job_id: str, kind: str, actor: str, heartbeat_age_s: float, **params: object) -> JobRecord:
    """A job another server process started, whose last heartbeat is ``heartbeat_age_s`` old."""
    now = datetime.now(UTC)
    return JobRecord(job_id, kind, actor, iso(now - timedelta(seconds=heartbeat_age_s + 1)), "other-host:4242:dead",
                     iso(now - timedelta(seconds=heartbeat_age_s)), params=dict(params))


def test_jobs_of_other_processes_answer_here_and_a_stale_one_is_abandoned(env: Env) -> None:
    client, store, _ = env
    store.create_job(elsewhere("import-alive", "import", "t0-operator", 2, file="a.csv", mapping="assets",
                               dry_run=False))
    store.create_job(elsewhere("import-dead", "import", "t0-operator", 120, file="b.csv", mapping="assets",
                               dry_run=True))
    alive = client.get(f"{V1}/imports/import-alive").json()
    assert (alive["state"], alive["file"], alive["actor"]) == ("running", "a.csv", "t0-operator")
    dead = client.get(f"{V1}/imports/import-dead").json()
    assert (dead["state"], dead["dry_run"], dead["result"]) == ("abandoned", True, None)
    assert [j["id"] for j in client.get(f"{V1}/jobs", params={"state": "abandoned"}).json()["items"]] == [
        "import-dead"]
    summary = {"rows": 4, "created": 6}
    assert store.finish_job("import-alive", "finished", iso(datetime.now(UTC)), result=summary)
    assert client.get(f"{V1}/imports/import-alive").json()["result"] == summary
    # A run's job shows in its run record; an import is no run, and a run no import.
    store.create_job(elsewhere("scan-elsewhere", "scan", "t0-operator", 500, ports="22"))
    run = client.get(f"{V1}/runs/scan-elsewhere").json()
    assert (run["method"], run["job"], run["actor"]) == ("scan", "abandoned", "t0-operator")
    assert client.get(f"{V1}/runs/import-dead").status_code == 404
    assert client.get(f"{V1}/imports/scan-elsewhere").status_code == 404


def test_the_list_pages_newest_first_and_a_limited_token_sees_only_its_own(env: Env) -> None:
    client, store, token_for = env
    done = finished(client, upload(client, "servers.csv"))
    assert done["state"] == "finished"
    for n in range(5):
        store.create_job(elsewhere(f"import-old-{n}", "import", "someone-else", 3600 - n))
    first = client.get(f"{V1}/jobs", params={"limit": 4}).json()
    assert [j["id"] for j in first["items"]] == [done["id"], "import-old-4", "import-old-3", "import-old-2"]
    assert first["items"][0]["status_url"] == f"{V1}/imports/{done['id']}"
    assert first["items"][0]["params"] == {"file": "servers.csv", "mapping": "assets", "dry_run": False}
    assert "result" not in first["items"][0]
    rest = client.get(f"{V1}/jobs", params={"limit": 4, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in rest["items"]] == ["import-old-1", "import-old-0"] and rest["next_cursor"] is None
    bad = client.get(f"{V1}/jobs", params={"cursor": "not-ours"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{V1}/jobs", params={"state": "lost"}).status_code == 422
    assert [j["id"] for j in client.get(f"{V1}/jobs", params={"kind": "scan"}).json()["items"]] == []

    limited = {"Authorization": f"Bearer {token_for('operator', partitions=['p1'])}"}
    mine = finished(client, upload(client, "servers.csv", headers=limited, dry_run=True), limited)
    seen = client.get(f"{V1}/jobs", headers=limited).json()["items"]
    assert [j["id"] for j in seen] == [mine["id"]]  # not the unlimited operator's, not someone-else's
    assert client.get(f"{V1}/imports/{done['id']}", headers=limited).status_code == 404
    viewer = {"Authorization": f"Bearer {token_for('viewer')}"}
    assert client.get(f"{V1}/jobs", headers=viewer).status_code == 403
