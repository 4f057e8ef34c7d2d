"""The Neo4j store against a real server: migration both ways, a crash mid-load, secret hygiene."""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from cmdb.batch import Batch
from cmdb.errors import ConfigError, StoreError, StoreUnavailableError
from cmdb.ingest import ingest
from cmdb.ingest_pipeline import ingest_many
from cmdb.migrate import compare_stores, export_store, import_dump, migrate
from cmdb.store.base import DiscoveryRunRecord, SearchQuery, iso
from cmdb.store.neo4j import Neo4jStore
from cmdb.store.sqlite import SqliteStore

pytestmark = pytest.mark.neo4j

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "cmdb" / "sample" / "estate.yaml"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
KILL_LOAD_CIS = int(os.environ.get("CMDB_TEST_KILL_LOAD_CIS", "20000"))


def sample_estate() -> dict[str, Any]:
    if SAMPLE.exists():
        doc: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
        return doc
    cis = [{"ref": f"h{i}", "class": "Server", "hostname": f"h{i}", "fqdn": f"h{i}.example.com",
            "ip_addresses": [f"10.0.0.{i}"]} for i in range(20)]
    rels = [{"type": "DEPENDS_ON", "from": f"h{i}", "to": f"h{i + 1}"} for i in range(19)]
    return {"source": "manual", "scope": "sample", "complete": True, "cis": cis, "relationships": rels}


def second_source(estate: dict[str, Any]) -> dict[str, Any]:
    """An ssh view of some hosts of the estate: new attributes, conflicting values, a new edge."""
    hosts = [c for c in estate["cis"] if c.get("hostname") and c["class"] in ("Server", "VirtualMachine")][:12]
    cis = []
    for i, h in enumerate(hosts):
        item = {"ref": f"s{i}", "class": h["class"], "hostname": h["hostname"], "os": "Ubuntu",
                "os_version": f"22.04.{i}", "cpu_count": 8 + i, "tags": ["ssh", f"rack-{i % 3}"]}
        for key in ("fqdn", "ip_addresses", "serial_number"):
            if h.get(key):
                item[key] = h[key]
        cis.append(item)
    rels = [{"type": "DEPENDS_ON", "from": f"s{i}", "to": f"s{i + 1}", "attributes": {"via": "ssh"}}
            for i in range(len(cis) - 1)]
    return {"source": "ssh", "scope": "10.0.0.0/8", "complete": True, "cis": cis, "relationships": rels}


def load(store: Any, doc: dict[str, Any], now: datetime, run_id: str | None = None) -> None:
    batch = Batch.from_dict(copy.deepcopy(doc))
    if run_id:
        batch.run_id = run_id
    ingest(store, batch, now=now)


# -- (a) migration round trip ------------------------------------------------------------------------
def test_migration_sqlite_neo4j_sqlite_round_trip(tmp_path: Path, neo: Neo4jStore) -> None:
    estate = sample_estate()
    first = SqliteStore(tmp_path / "first.db")
    load(first, estate, T0)
    ssh = second_source(estate)
    load(first, ssh, T0 + timedelta(hours=1))
    shrunk = copy.deepcopy(ssh)
    shrunk["cis"], shrunk["relationships"] = shrunk["cis"][:6], shrunk["relationships"][:3]
    for day in range(1, 5):  # complete runs that miss half the hosts: stale, then retired edges
        load(first, shrunk, T0 + timedelta(days=day))
    stats = first.stats()
    assert stats["cis"] >= 20 and stats["events"] > stats["cis"]
    first.save_discovery_run(DiscoveryRunRecord(
        "snmp-1", "snmp", iso(T0), iso(T0 + timedelta(seconds=3)), "ops", ["10.0.0.0/30"], {"profiles": ["lab"]},
        [{"target": "10.0.0.1", "outcome": "ok", "detail": "", "profile": "lab", "items": 4, "seconds": 0.2}]))

    counts = migrate(first, neo)
    assert counts["ci"] == stats["cis"] and counts["rel"] == stats["relationships"]
    assert counts["discovery_run"] == 1 and neo.get_discovery_run("snmp-1") == first.get_discovery_run("snmp-1")
    assert compare_stores(first, neo) == []
    assert neo.stats() == stats

    second = SqliteStore(tmp_path / "second.db")
    migrate(neo, second)
    assert compare_stores(neo, second) == []
    assert compare_stores(first, second) == []

    # The same through an export file, and into a non-empty store only on request.
    path = tmp_path / "estate.jsonl"
    export_store(neo, path)
    third = SqliteStore(tmp_path / "third.db")
    import_dump(third, path)
    assert compare_stores(first, third) == []
    with pytest.raises(StoreError, match="not empty"):
        migrate(first, neo)
    migrate(second, neo, replace=True)
    assert compare_stores(first, neo) == []

    # Life goes on after a migration: history continues after the restored events.
    before = neo.events()
    load(neo, shrunk, T0 + timedelta(days=6), run_id="run-after-migration")
    load(first, shrunk, T0 + timedelta(days=6), run_id="run-after-migration")
    after = neo.events()
    assert after[: len(before)] == before
    assert all((e.seq or 0) > max(b.seq or 0 for b in before) for e in after[len(before):])
    assert compare_stores(first, neo) == []
    for store in (first, second, third):
        store.close()


def test_differences_are_reported(tmp_path: Path, neo: Neo4jStore) -> None:
    estate = sample_estate()
    first = SqliteStore(tmp_path / "first.db")
    load(first, estate, T0)
    migrate(first, neo)
    load(neo, second_source(estate), T0 + timedelta(hours=1))
    diffs = compare_stores(first, neo)
    assert any(d.startswith("ci ") for d in diffs) and any("event" in d for d in diffs)
    first.close()


# -- (b) a crash in the middle of a large load ---------------------------------------------------------
def _load_docs(n_cis: int) -> list[dict[str, Any]]:
    try:
        from bench.synthetic import synthetic_batches
    except ImportError:  # pragma: no cover - the generator ships with the package
        docs = []
        for b in range(n_cis // 5000):
            cis = [{"ref": f"h{b}-{i}", "class": "Server", "hostname": f"h{b}-{i}", "fqdn": f"h{b}-{i}.example"}
                   for i in range(5000)]
            rels = [{"type": "DEPENDS_ON", "from": f"h{b}-{i}", "to": f"h{b}-{i + 1}"} for i in range(4999)]
            docs.append({"source": "import", "scope": "synthetic", "cis": cis, "relationships": rels})
        return docs
    return list(synthetic_batches(n_cis))


def _batches(docs: list[dict[str, Any]], prefix: str) -> Iterator[Batch]:
    for i, doc in enumerate(docs):
        batch = Batch.from_dict(copy.deepcopy(doc))
        batch.run_id = f"{prefix}-{i:03d}"
        yield batch


def _run_load(store: Neo4jStore, docs: list[dict[str, Any]], prefix: str, started: threading.Event,
              outcome: dict[str, Any], pipelined: bool = False) -> None:
    try:
        if pipelined:  # as ``cmdb load`` does: the next batch planned while a writer process writes one
            for i, _ in enumerate(ingest_many(store, _batches(docs, prefix), pipeline=True)):
                outcome["done"] = i + 1
                started.set()
            return
        for i, doc in enumerate(docs):
            load(store, doc, T0, run_id=f"{prefix}-{i:03d}")
            outcome["done"] = i + 1
            started.set()
    except BaseException as exc:  # handed to the test thread
        outcome["error"] = exc
    finally:
        started.set()


@pytest.mark.parametrize("pipelined", [False, True], ids=["ingest", "ingest_many"])
def test_kill_during_load_leaves_whole_batches_and_reload_completes(tmp_path: Path, pipelined: bool) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from neo4j_server import Neo4jServer

    docs = _load_docs(KILL_LOAD_CIS)
    n_cis = sum(len(d.get("cis") or []) for d in docs)
    n_rels = sum(len(d.get("relationships") or []) for d in docs)
    server = Neo4jServer(heap="1g", pagecache="512m", startup_timeout=180.0)
    server.start()
    try:
        store = Neo4jStore(server.uri, server.user, server.password, max_retry_time=3.0)
        started, outcome = threading.Event(), {"done": 0}
        loader = threading.Thread(target=_run_load, args=(store, docs, "load", started, outcome, pipelined),
                                  daemon=True)
        loader.start()
        assert started.wait(600) and "error" not in outcome, outcome.get("error")
        server.kill()  # SIGKILL while later batches are in flight
        loader.join(300)
        assert not loader.is_alive()
        error = outcome.get("error")
        assert isinstance(error, StoreError), f"the load should fail with a StoreError, got {error!r}"
        message = str(error)
        assert "Neo4j at" in message and server.password not in message
        assert isinstance(error, StoreUnavailableError) or "failed" in message
        store.close()

        server.restart()
        store = Neo4jStore(server.uri, server.user, server.password)
        ledger = {r.run_id: r for r in store.runs(limit=10_000)}
        events_by_run = Counter(e.run_id for e in store.events())
        committed = 0
        for i in range(len(docs)):
            run_id = f"load-{i:03d}"
            if run_id in ledger:  # whole: its ledger entry, all its history and all its items
                assert events_by_run[run_id] == ledger[run_id].stats["events"] > 0, run_id
                committed += 1
            else:  # or nothing at all
                assert events_by_run[run_id] == 0, run_id
        assert committed >= outcome["done"]  # every batch the loader saw committed is there
        assert committed < len(docs), "the kill came after the load finished; raise CMDB_TEST_KILL_LOAD_CIS"
        stats = store.stats()
        ci_batches = [d for d in docs if d.get("cis")]
        assert stats["cis"] == sum(len(d["cis"]) for d in ci_batches[:min(committed, len(ci_batches))])

        # Re-running the whole load completes it without a duplicate CI, key or relationship.
        started, outcome = threading.Event(), {"done": 0}
        _run_load(store, docs, "reload", started, outcome, pipelined)
        assert "error" not in outcome, outcome.get("error")
        stats = store.stats()
        assert stats["cis"] == n_cis and stats["relationships"] == n_rels
        dup_keys = store._read("MATCH (k:CIKey) WITH k.key AS key, count(*) AS n WHERE n > 1 RETURN count(*) AS d")
        dup_rels = store._read("MATCH (a:CI)-[r]->(b:CI) WITH a, b, coalesce(r.type, type(r)) AS t, count(*) AS n"
                               " WHERE n > 1 RETURN count(*) AS d")
        assert dup_keys[0]["d"] == 0 and dup_rels[0]["d"] == 0
        n_keys = store._read("MATCH (k:CIKey) RETURN count(k) AS n, count(DISTINCT k.ci_id) AS c")[0]
        assert n_keys["c"] == n_cis and n_keys["n"] >= n_cis
        store.close()
    finally:
        server.close()


# -- (c) secrets --------------------------------------------------------------------------------------
def test_password_stays_out_of_urls_and_errors(neo4j_server: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    password = neo4j_server.password
    host = neo4j_server.uri.split("://", 1)[1]
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, password)
    assert password not in store.url and password not in repr(store)
    store.close()

    with pytest.raises(ConfigError) as in_url:
        Neo4jStore.from_url(f"neo4j://{neo4j_server.user}:{password}@{host}")
    assert password not in str(in_url.value) and "CMDB_NEO4J_PASSWORD" in str(in_url.value)

    monkeypatch.delenv("CMDB_NEO4J_PASSWORD", raising=False)
    secret = tmp_path / "neo4j.pw"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o644)
    monkeypatch.setenv("CMDB_NEO4J_PASSWORD_FILE", str(secret))
    with pytest.raises(ConfigError, match=f"chmod 600 {secret}"):
        Neo4jStore.from_url(f"neo4j://{neo4j_server.user}@{host}")
    secret.chmod(0o600)
    store = Neo4jStore.from_url(f"neo4j://{neo4j_server.user}@{host}")
    assert store.url == f"neo4j://{neo4j_server.user}@{host}" and password not in store.url
    assert store.search(SearchQuery(limit=1)).limit == 1
    store.close()
    secret.write_text(f"{neo4j_server.user}/{password}\n", encoding="utf-8")  # NEO4J_AUTH_FILE's form
    store = Neo4jStore.from_url(f"neo4j://{neo4j_server.user}@{host}")
    assert store.search(SearchQuery(limit=1)).limit == 1
    store.close()

    monkeypatch.setenv("CMDB_NEO4J_PASSWORD", "wrong-" + password)
    with pytest.raises(StoreUnavailableError) as refused:
        Neo4jStore.from_url(f"neo4j://{neo4j_server.user}@{host}")
    assert password not in str(refused.value) and "authentication failed" in str(refused.value)

    with pytest.raises(StoreUnavailableError) as down:
        Neo4jStore("neo4j://127.0.0.1:1", neo4j_server.user, password, connection_timeout=2.0)
    assert password not in str(down.value) and "127.0.0.1:1" in str(down.value)
