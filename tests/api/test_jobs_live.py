"""Job status under ``cmdb serve --workers 2``: any worker answers, a restart keeps it, a killed worker's is abandoned.

One server (two uvicorn workers, a short ``CMDB_JOB_STALE_SECONDS``) per store kind, SQLite and Neo4j.
Every status poll opens a new connection, so the two workers share the polls (a kept-alive connection
would stay with one): with the status in one process's memory, about half of them answered 404.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cmdb.store.base import GraphStore
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import make_token_factory, start_server, stop_server

V1 = "/api/v1"
DATA = Path(__file__).resolve().parents[1] / "data" / "tabular"
STALE_SECONDS = 6


def servers_csv(rows: int) -> bytes:
    lines = ["hostname,serial,ips,env,tier_note,owner_email,installed"]
    lines += [f"job-host-{i:06d},JOB-{i:07d},10.{i // 65536}.{i // 256 % 256}.{i % 256},production,x,"
              f"owner{i % 40}@example.com,01/02/2024" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class TwoWorkers:
    tmp: Path
    store: GraphStore
    token: str
    env: dict[str, str]
    proc: Any = None
    url: str = ""

    def start(self) -> None:
        self.proc, self.url = start_server(self.store, self.env, workers=2, log=self.tmp / "server.log")

    def restart(self) -> None:
        stop_server(self.proc)
        self.start()

    def get(self, path: str) -> httpx.Response:
        """A request on a connection of its own, so the kernel may hand it to either worker."""
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)

    def upload(self, name: str, content: bytes) -> httpx.Response:
        return httpx.post(self.url + f"{V1}/imports", headers={"Authorization": f"Bearer {self.token}"},
                          files={"file": (name, content, "text/csv")}, data={"mapping": "assets"}, timeout=60)

    def workers(self) -> list[int]:
        """The pids of the server's worker processes (children of the uvicorn supervisor)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat, cmdline = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                # Not multiprocessing's resource tracker, the supervisor's other child.
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid and b"spawn_main" in cmdline:
                    found.append(int(entry.name))
        return found


@pytest.fixture(scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def two_workers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    tmp = tmp_path_factory.mktemp("jobs-live")
    maps = tmp / "mappings"
    maps.mkdir()
    # Small batches keep each write transaction short, so heartbeats are never held up for long.
    (maps / "assets.yaml").write_text((DATA / "servers.map.yaml").read_text() + "batch_size: 500\n")
    env = {"CMDB_MAPPINGS_DIR": str(maps), "CMDB_JOB_STALE_SECONDS": str(STALE_SECONDS)}
    store: GraphStore
    if request.param == "sqlite":
        store = SqliteStore(tmp / "jobs.db")
    else:
        from cmdb.store.neo4j import Neo4jStore

        ep = request.getfixturevalue("neo4j_server")
        store = Neo4jStore(ep.uri, ep.user, ep.password)
        store.clear()
        env |= {"CMDB_TOKEN_KEY_FILE": str(tmp / "token-key"), "CMDB_NEO4J_PASSWORD": ep.password}
    old_key = os.environ.get("CMDB_TOKEN_KEY_FILE")
    if "CMDB_TOKEN_KEY_FILE" in env:  # the tokens made here must be checked with the server's key
        os.environ["CMDB_TOKEN_KEY_FILE"] = env["CMDB_TOKEN_KEY_FILE"]
    try:
        server = TwoWorkers(tmp, store, make_token_factory(store)("operator"), env)
        server.start()
        try:
            yield server
        finally:
            stop_server(server.proc)
    finally:
        store.close()
        if old_key is None:
            os.environ.pop("CMDB_TOKEN_KEY_FILE", None)
        else:
            os.environ["CMDB_TOKEN_KEY_FILE"] = old_key


def poll_until_done(server: TwoWorkers, url: str, deadline_s: float = 120) -> tuple[dict[str, Any], list[str]]:
    states: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        r = server.get(url)
        assert r.status_code == 200, f"poll {len(states) + 1} of {url}: {r.status_code} {r.text}"
        doc: dict[str, Any] = r.json()
        states.append(doc["state"])
        if doc["state"] != "running":
            return doc, states
        time.sleep(0.05)
    raise AssertionError(f"{url} still running after {deadline_s} s: {states[-5:]}")


def test_every_worker_answers_an_import_status_until_it_ends_with_the_same_summary(two_workers: TwoWorkers) -> None:
    assert len(two_workers.workers()) == 2
    started = two_workers.upload("hosts.csv", servers_csv(8000))
    assert started.status_code == 202, started.text
    url = started.headers["location"]
    assert url == f"{V1}/imports/{started.json()['id']}" and started.json()["state"] == "running"
    done, states = poll_until_done(two_workers, url)
    assert done["state"] == "finished", done
    assert set(states) <= {"running", "finished"} and states.index("finished") == len(states) - 1
    assert done["result"]["rows"] == 8000 and done["result"]["created"] == 8040 and done["result"]["errors"] == []
    assert (done["file"], done["mapping"], done["dry_run"], done["actor"]) == ("hosts.csv", "assets", False,
                                                                               "t0-operator")
    answers = [two_workers.get(url) for _ in range(12)]
    assert all(a.status_code == 200 and a.json() == done for a in answers)
    listed = [two_workers.get(f"{V1}/jobs?kind=import").json() for _ in range(4)]
    for page in listed:
        mine = [j for j in page["items"] if j["id"] == done["id"]]
        assert mine and mine[0]["state"] == "finished" and mine[0]["status_url"] == url


def test_a_restarted_server_still_answers_a_finished_import(two_workers: TwoWorkers) -> None:
    started = two_workers.upload("small.csv", servers_csv(50))
    assert started.status_code == 202, started.text
    url = started.headers["location"]
    done, _ = poll_until_done(two_workers, url)
    assert done["state"] == "finished" and done["result"]["rows"] == 50
    before = two_workers.workers()
    two_workers.restart()
    assert set(two_workers.workers()).isdisjoint(before)
    for _ in range(6):
        again = two_workers.get(url)
        assert again.status_code == 200 and again.json() == done


def test_the_job_of_a_killed_worker_is_reported_abandoned(two_workers: TwoWorkers) -> None:
    started = two_workers.upload("big.csv", servers_csv(60000))
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    job = two_workers.store.get_job(job_id)
    assert job is not None and job.state == "running"
    pid = int(job.owner.split(":")[1])
    assert pid in two_workers.workers()
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    states = []
    while time.monotonic() < killed_at + STALE_SECONDS + 30:
        r = two_workers.get(started.headers["location"])
        assert r.status_code == 200, r.text  # the other worker (or the restarted one) answers
        states.append(r.json()["state"])
        if states[-1] != "running":
            break
        time.sleep(0.25)
    assert states[-1] == "abandoned", states
    assert time.monotonic() - killed_at >= STALE_SECONDS - 2  # not before its heartbeat went stale
    assert r.json()["result"] is None and r.json()["error"] is None
    abandoned = two_workers.get(f"{V1}/jobs?state=abandoned").json()["items"]
    assert [j["id"] for j in abandoned] == [job_id]
    running = two_workers.get(f"{V1}/jobs?state=running").json()["items"]
    assert job_id not in {j["id"] for j in running}
