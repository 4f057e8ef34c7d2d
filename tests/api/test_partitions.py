"""Partitions over the API: a limited token sees and writes only its partitions.

The estate: host ``h-aws`` (aws) runs app ``app-dc`` (dc), on which service ``shop`` (aws)
depends; ``db-dc`` (dc) stands alone; ``misc`` has no partition (``default``). Partitions come from
rules in ``CMDB_CONFIG`` (source ``aws`` -> aws) and from explicit attributes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore, SearchQuery
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import make_token_factory

AWS = {"source": "aws", "scope": "acct-1", "cis": [
    {"ref": "h", "class": "Server", "hostname": "h-aws", "fqdn": "h-aws.example"},
    {"ref": "shop", "class": "Service", "name": "shop", "service_type": "business", "tier": 1},
]}
DC = {"source": "import:dc", "cis": [
    {"ref": "app", "class": "Application", "name": "app-dc", "partition": "dc"},
    {"ref": "db", "class": "Database", "name": "db-dc", "partition": "dc"},
    {"ref": "misc", "class": "Application", "name": "misc"},
], "relationships": [
    {"type": "RUNS_ON", "from": "app", "to": {"class": "Server", "fqdn": "h-aws.example"}},
    {"type": "DEPENDS_ON", "from": {"class": "Service", "name": "shop"}, "to": "app"},
]}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("partitions")
    config = tmp / "cmdb.yaml"
    config.write_text("partitions:\n  - {source: aws, partition: aws}\n", encoding="utf-8")
    saved = {k: os.environ.get(k) for k in ("CMDB_CONFIG", "CMDB_TOKEN_KEY_FILE")}
    os.environ["CMDB_CONFIG"] = str(config)
    os.environ["CMDB_TOKEN_KEY_FILE"] = str(tmp / "token-key")
    store: GraphStore
    if request.param == "sqlite":
        store = SqliteStore(tmp / "p.db")
    else:
        from cmdb.store.neo4j import Neo4jStore

        ep = request.getfixturevalue("neo4j_server")
        store = Neo4jStore(ep.uri, ep.user, ep.password)
        store.clear()
    try:
        ingest(store, Batch.from_dict(AWS))
        ingest(store, Batch.from_dict(DC))
        ids = {c.name: c.id for c in store.search(SearchQuery(limit=100)).items}
        token_for = make_token_factory(store)
        app = create_app(store, ApiSettings(impact_poll_seconds=0.2))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield {"client": client, "store": store, "ids": ids, "token_for": token_for, "tmp": tmp}
    finally:
        store.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def auth(env: dict[str, Any], role: str = "viewer", **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['token_for'](role, **kw)}"}


def test_rules_and_explicit_values_set_partitions(env: dict[str, Any]) -> None:
    store, ids = env["store"], env["ids"]
    parts = {n: (store.get_ci(i).attrs.get("partition") or "default") for n, i in ids.items()}
    assert parts == {"h-aws": "aws", "shop": "aws", "app-dc": "dc", "db-dc": "dc", "misc": "default"}


def test_a_hidden_ci_answers_exactly_like_a_missing_one(env: dict[str, Any]) -> None:
    c, ids = env["client"], env["ids"]
    h = auth(env, partitions=["aws"])
    assert c.get(f"/api/v1/cis/{ids['h-aws']}", headers=h).status_code == 200
    for ref in (ids["db-dc"], "db-dc"):
        hidden = c.get(f"/api/v1/cis/{ref}", headers=h)
        missing = c.get("/api/v1/cis/no-such-ci", headers=h)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.headers["content-type"] == missing.headers["content-type"]
        norm = {**hidden.json(), "detail": hidden.json()["detail"].replace(ref, "X"), "instance": None}
        assert norm == {**missing.json(), "detail": missing.json()["detail"].replace("no-such-ci", "X"),
                        "instance": None}
        for sub in ("history", "provenance", "relationships"):
            assert c.get(f"/api/v1/cis/{ref}/{sub}", headers=h).status_code == 404
    # An unlimited token sees it.
    assert c.get(f"/api/v1/cis/{ids['db-dc']}", headers=auth(env)).status_code == 200


def names(resp: Any) -> list[str]:
    return sorted(i["name"] for i in resp.json()["items"])


def test_search_shows_only_visible_cis_with_exact_totals(env: dict[str, Any]) -> None:
    c = env["client"]
    r = c.get("/api/v1/cis", headers=auth(env, partitions=["aws"]))
    assert names(r) == ["h-aws", "shop"] and r.json()["total"] == 2
    r = c.get("/api/v1/cis", headers=auth(env, partitions=["dc", "default"]))
    assert names(r) == ["app-dc", "db-dc", "misc"] and r.json()["total"] == 3
    r = c.get("/api/v1/cis", params={"limit": 1}, headers=auth(env, partitions=["dc", "default"]))
    assert len(r.json()["items"]) == 1 and r.json()["total"] == 3 and r.json()["next_cursor"]
    r2 = c.get("/api/v1/cis", params={"limit": 5, "cursor": r.json()["next_cursor"]},
               headers=auth(env, partitions=["dc", "default"]))
    assert sorted(names(r) + names(r2)) == ["app-dc", "db-dc", "misc"]
    r = c.get("/api/v1/cis", params={"attr": "partition=dc"}, headers=auth(env, partitions=["aws"]))
    assert r.json()["items"] == [] and r.json()["total"] == 0
    r = c.get("/api/v1/cis", headers=auth(env, partitions=[]))
    assert r.json()["total"] == 0
    # ``default`` is also the partition of CIs without the attribute.
    r = c.get("/api/v1/cis", params={"attr": "partition=default"}, headers=auth(env))
    assert names(r) == ["misc"] and r.json()["total"] == 1
    r = c.get("/api/v1/cis", params={"attr": "partition=dc"}, headers=auth(env, partitions=["dc", "aws"]))
    assert names(r) == ["app-dc", "db-dc"]


def test_history_and_relationships_leave_out_hidden_cis(env: dict[str, Any]) -> None:
    c, ids = env["client"], env["ids"]
    h = auth(env, partitions=["aws"])
    events = c.get(f"/api/v1/cis/{ids['h-aws']}/history", headers=h).json()
    assert events and all(ids["app-dc"] not in (e["ci_id"], e["peer_id"]) for e in events)
    full = c.get(f"/api/v1/cis/{ids['h-aws']}/history", headers=auth(env)).json()
    assert any(ids["app-dc"] in (e["ci_id"], e["peer_id"]) for e in full)
    assert c.get(f"/api/v1/cis/{ids['h-aws']}/relationships", headers=h).json() == []
    assert len(c.get(f"/api/v1/cis/{ids['h-aws']}/relationships", headers=auth(env)).json()) == 1


def test_impact_counts_hidden_cis_and_shows_a_placeholder_on_their_path(env: dict[str, Any]) -> None:
    c, ids = env["client"], env["ids"]
    full = c.post("/api/v1/impact/incident", json={"cis": ["h-aws"]}, headers=auth(env)).json()
    shop = next(s for s in full["services"] if s["name"] == "shop")
    assert shop["path"] == ["h-aws", "app-dc", "shop"]
    limited = c.post("/api/v1/impact/incident", json={"cis": ["h-aws"]}, headers=auth(env, partitions=["aws"]))
    assert limited.status_code == 200
    doc = limited.json()
    shop = next(s for s in doc["services"] if s["name"] == "shop")
    assert shop["path"] == ["h-aws", "(hidden)", "shop"] and ids["app-dc"] not in shop["path_ids"]
    assert {a["name"] for a in doc["affected"]} == {"h-aws", "shop"} and doc["hidden"]["affected"] == 1
    assert "app-dc" not in limited.text and ids["app-dc"] not in limited.text
    # A hidden cause is as unknown as a missing one.
    r = c.post("/api/v1/impact/incident", json={"cis": ["db-dc"]}, headers=auth(env, partitions=["aws"]))
    assert r.status_code == 404 and "db-dc" in r.json()["detail"] and ids["db-dc"] not in r.text


def test_change_impact_is_redacted_too(env: dict[str, Any]) -> None:
    c = env["client"]
    body = {"cis": ["h-aws"], "start": "2026-12-01T22:00", "end": "2026-12-01T23:00"}
    doc = c.post("/api/v1/impact/change", json=body, headers=auth(env, partitions=["aws"])).json()
    assert any(s["path"] == ["h-aws", "(hidden)", "shop"] for s in doc["services"])
    assert "app-dc" not in str(doc)


def test_a_limited_token_writes_only_its_partitions(env: dict[str, Any], tmp_path: Path) -> None:
    c, store = env["client"], env["store"]
    h = auth(env, "operator", partitions=["aws"])
    ok = {"source": "manual", "cis": [{"class": "Server", "hostname": "new-aws", "fqdn": "new-aws.example"}]}
    r = c.post("/api/v1/batches", json=ok, headers=h)
    assert r.status_code == 200, r.text
    new = store.get_ci(store.find_by_name("new-aws")[0])
    assert new.attrs["partition"] == "aws"  # the token's only partition
    events = store.events([new.id])
    assert events and {e.actor for e in events} == {next(t.name for t in store.tokens() if t.role == "operator"
                                                         and t.partitions == ["aws"])}
    other = {"source": "manual", "cis": [{"class": "Server", "fqdn": "x-dc.example", "partition": "dc"}]}
    r = c.post("/api/v1/batches", json=other, headers=h)
    assert r.status_code == 403 and "partition 'dc'" in r.json()["detail"]
    # Identifying a CI of another partition (db-dc) is refused, and nothing is written.
    sneaky = {"source": "manual", "cis": [{"class": "Database", "name": "db-dc", "engine": "pg"}]}
    before = len(store.events())
    r = c.post("/api/v1/batches", json=sneaky, headers=h)
    assert r.status_code == 403 and len(store.events()) == before
    r = c.post("/api/v1/cis", json={"class": "Server", "attrs": {"fqdn": "y.example", "partition": "dc"}}, headers=h)
    assert r.status_code == 403
    # A token of several partitions updates a CI it sees without naming the partition again; a new CI must name one.
    h2 = auth(env, "operator", partitions=["aws", "dc"])
    r = c.post("/api/v1/batches", json={"source": "manual", "cis": [{"class": "Database", "name": "db-dc",
                                                                      "engine": "pg"}]}, headers=h2)
    assert r.status_code == 200, r.text
    assert store.get_ci(env["ids"]["db-dc"]).attrs["partition"] == "dc"
    r = c.post("/api/v1/batches", json={"source": "manual", "cis": [{"class": "Database", "name": "db-new"}]},
               headers=h2)
    assert r.status_code == 403 and "partition 'default'" in r.json()["detail"]


def test_a_collector_writes_only_its_sources_and_scopes(env: dict[str, Any]) -> None:
    c = env["client"]
    h = auth(env, "collector", sources=["scan"], scopes=["10.9.0.0/24"])
    batch = {"source": "scan", "scope": "10.9.0.5/32", "cis": [{"class": "Host", "management_ip": "10.9.0.5"}]}
    assert c.post("/api/v1/batches", json=batch, headers=h).status_code == 200
    r = c.post("/api/v1/batches", json={**batch, "source": "snmp"}, headers=h)
    assert r.status_code == 403 and "source 'snmp'" in r.json()["detail"]
    r = c.post("/api/v1/batches", json={**batch, "scope": "10.10.0.0/24"}, headers=h)
    assert r.status_code == 403 and "scope" in r.json()["detail"]
    assert c.get("/api/v1/cis", headers=h).status_code == 403


def test_a_run_started_by_a_limited_token_writes_only_its_partitions(env: dict[str, Any]) -> None:
    from api.auth import Principal
    from api.visibility import BatchRefusedError, checked_sink
    from cmdb.model import default_schema
    from cmdb.reconcile import ReconcileConfig

    store = env["store"]
    assert checked_sink(store, default_schema(), ReconcileConfig(), Principal("x", "operator")) is None
    sink = checked_sink(store, default_schema(), ReconcileConfig(), Principal("x", "operator", frozenset({"aws"})))
    assert sink is not None
    summary = sink(Batch.from_dict({"source": "scan", "scope": "127.0.0.66/32",
                                    "cis": [{"class": "Host", "management_ip": "127.0.0.66"}]}))
    assert summary["created"] == 1
    ci = store.get_ci(store.find_by_key("device:management_ip=127.0.0.66"))
    assert ci is not None and ci.attrs["partition"] == "aws"
    with pytest.raises(BatchRefusedError, match="identifies a CI outside"):
        sink(Batch.from_dict({"source": "scan", "cis": [{"class": "Database", "name": "db-dc"}]}))


def test_a_limited_token_cannot_retire_outside_its_partitions(env: dict[str, Any]) -> None:
    c, store = env["client"], env["store"]
    h = auth(env, "operator", partitions=["aws"])
    before = len(store.events())
    for retire in ({"cis": [{"class": "Database", "name": "db-dc"}]},
                   {"relationships": [{"type": "DEPENDS_ON", "from": {"class": "Service", "name": "shop"},
                                       "to": {"class": "Application", "name": "app-dc"}}]}):
        r = c.post("/api/v1/batches", json={"source": "manual", "retire": retire}, headers=h)
        assert r.status_code == 403 and "outside the partitions" in r.json()["detail"], r.text
    assert len(store.events()) == before
    assert store.get_ci(env["ids"]["db-dc"]).status == "active"
