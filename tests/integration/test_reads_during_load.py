"""Reads never wait for a writer: during a long ``cmdb load`` other commands and the API read at once,
a second load queues behind the first and succeeds, and (SQLite) a write that waits too long fails
with an error that says what to do. On both stores.

The long load is 15,000 synthetic CIs in one batch, loaded by ``cmdb load`` in its own process.
On SQLite the test waits until that process holds the write lock; on Neo4j until its write
transaction is running; every read must then answer within a few seconds while the load still runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import load_token_key
from api.state import ApiSettings
from bench.synthetic import synthetic_batches
from cmdb.store import open_store
from cmdb.store.base import GraphStore, SearchQuery
from cmdb.tokens import create_token

LONG_LOAD_CIS = 15000  # Neo4j's load of these lasts long enough for the reads below
LONG_LOAD_CIS_SQLITE = 40000  # SQLite writes faster: 15k was over before a CLI read had started on a quiet machine
READ_SECONDS = 5.0  # a CLI read starts a Python process; it must not wait for the load
# Neo4j reads do not wait for the write either, but share two cores with the server's commit work
# and JVM pauses (a read measured 0.03-0.6 s during such a load, with rare pauses of a few seconds).
READ_SECONDS_NEO4J = 15.0


class HiddenEnv(dict[str, str]):
    """Environment additions that may hold a password: shown as names only in a failure report."""

    def __repr__(self) -> str:
        return f"HiddenEnv({sorted(self)})"


def write_big_batch(path: Path, count: int) -> None:
    cis: list[dict[str, Any]] = []
    for b in synthetic_batches(count, batch_size=count):
        cis += b.get("cis", [])
    path.write_text(json.dumps({"source": "import:big", "scope": "big", "cis": cis}), encoding="utf-8")


def cmdb(store_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "product.cli", "--store", store_url, *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def sqlite_lock_held(path: str) -> bool:
    db = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        db.close()


def neo4j_write_running(store: GraphStore) -> bool:
    rows = store._read(  # type: ignore[attr-defined]
        "SHOW TRANSACTIONS YIELD currentQuery WHERE NOT currentQuery STARTS WITH 'SHOW' RETURN count(*) AS n")
    return int(rows[0]["n"]) > 0


@dataclass
class Target:
    kind: str
    store: GraphStore
    writing: Callable[[], bool]
    env: dict[str, str] = field(repr=False)  # holds the Neo4j password: never in test output


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    monkeypatch.setenv("CMDB_TOKEN_KEY_FILE", str(tmp_path / "key"))
    env = {"CMDB_TOKEN_KEY_FILE": str(tmp_path / "key")}
    if request.param == "sqlite":
        path = str(tmp_path / "long.db")
        store: GraphStore = open_store(f"sqlite:///{path}")
        yield Target("sqlite", store, lambda: sqlite_lock_held(path), env)
    else:
        from cmdb.store.neo4j import Neo4jStore

        ep = request.getfixturevalue("neo4j_server")
        monkeypatch.setenv("CMDB_NEO4J_PASSWORD", ep.password)
        neo = Neo4jStore(ep.uri, ep.user, ep.password)
        neo.clear()
        yield Target("neo4j", neo, lambda: neo4j_write_running(neo), {**env, "CMDB_NEO4J_PASSWORD": ep.password})
        store = neo
    store.close()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def test_reads_and_a_second_load_during_a_long_load(target: Target, tmp_path: Path) -> None:
    kind, store, writing, env = target.kind, target.store, target.writing, HiddenEnv(target.env)
    limit = READ_SECONDS if kind == "sqlite" else READ_SECONDS_NEO4J
    count = LONG_LOAD_CIS_SQLITE if kind == "sqlite" else LONG_LOAD_CIS
    url = store.url
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"source": "manual", "cis": [{"class": "Server", "fqdn": "before.example"}]}))
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"source": "manual", "cis": [{"class": "Server", "fqdn": "during.example"}]}))
    big = tmp_path / "big.json"
    write_big_batch(big, count)
    # A CLI command's own cost (a Python process and its imports) on this machine now: a busy one takes many
    # seconds for it, load or no load. The CLI read below may take that, plus READ_SECONDS, twice over.
    code, startup = timed(lambda: cmdb(url, "load", str(first), env=env).wait(120))
    assert code == 0
    token, _ = create_token(store, load_token_key(store), "reader", "viewer")
    app = create_app(url if kind == "sqlite" else store, ApiSettings(warm_impact=False))

    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:  # warm the query plans
        assert client.get("/api/v1/cis", params={"q": "before"}).json()["total"] == 1
    loader = cmdb(url, "load", str(big), env=env)
    deadline = time.monotonic() + 120
    while not writing():
        assert loader.poll() is None, f"the long load ended before it was seen writing: {loader.communicate()}"
        assert time.monotonic() < deadline, "the long load never started writing"
        time.sleep(0.02)

    # A second load queues behind the first and lands. It starts now, while the reads below run (a write
    # that may not wait that long: test_a_write_that_waits_too_long_fails_clearly_and_writes_nothing).
    queued = cmdb(url, "load", str(second), env=env)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        # Reads while the load holds the store: the API, a store opened now, and the CLI.
        r, took = timed(lambda: client.get("/api/v1/cis", params={"q": "before"}))
        assert r.status_code == 200 and r.json()["total"] == 1 and took < limit, (r.text, took)
        ci_id = r.json()["items"][0]["id"]
        r, took = timed(lambda: client.get(f"/api/v1/cis/{ci_id}"))
        assert r.status_code == 200 and took < limit
        opened, took = timed(lambda: open_store(url))
        try:
            assert opened.search(SearchQuery(text="before")).total == 1 and took < limit
        finally:
            opened.close()
        cli = cmdb(url, "ci", "search", "before", "--json", env=env)
        (out, err), took = timed(lambda: cli.communicate(timeout=60))
        assert cli.returncode == 0, err
        assert took < 2 * (startup + limit) and json.loads(out)["total"] == 1, (took, startup, out[:300])
        assert writing() or loader.poll() is not None
        still_loading = loader.poll() is None
        assert still_loading, "the reads took as long as the load: they waited for it"
        printed = [out, err]
        assert loader.wait(300) == 0, loader.communicate()
        printed += list(loader.communicate())
        out, err = queued.communicate(timeout=300)
        assert queued.returncode == 0, err
        printed += [out, err]
        secret = env.get("CMDB_NEO4J_PASSWORD")
        assert secret is None or not any(secret in text for text in printed), "the store password was printed"
        r = client.get("/api/v1/cis", params={"q": "during"})
        assert r.json()["total"] == 1
    assert store.stats()["cis"] == count + 2


def test_a_write_that_waits_too_long_fails_clearly_and_writes_nothing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a write may wait ``CMDB_WRITE_TIMEOUT`` for another writer, then fails naming the fix. The
    other writer is this test holding the write lock, so the wait is certain whatever the machine's speed."""
    monkeypatch.setenv("CMDB_TOKEN_KEY_FILE", str(tmp_path / "key"))
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    batch = tmp_path / "one.json"
    batch.write_text(json.dumps({"source": "manual", "cis": [{"class": "Server", "fqdn": "waited.example"}]}))
    open_store(url).close()  # the file and its schema exist: the load below only needs the write lock
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        impatient = cmdb(url, "load", str(batch), env={"CMDB_WRITE_TIMEOUT": "0.5"})
        _, err = impatient.communicate(timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert impatient.returncode == 4 and "CMDB_WRITE_TIMEOUT" in err and "nothing was written" in err, err
    assert "Traceback" not in err
    store = open_store(url)
    try:
        assert store.stats()["cis"] == 0
    finally:
        store.close()
