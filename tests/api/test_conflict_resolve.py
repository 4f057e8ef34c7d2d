"""``POST /api/v1/conflicts/{id}/resolve``: merge or keep separate, operator role, partition-aware,
problem+json errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import make_token_factory

ITEMS = [
    {"source": "import", "cis": [{"class": "Server", "hostname": "db-{n}", "ip_addresses": ["10.0.{n}.9"],
                                  "serial_number": "S-ONE-{n}", "partition": "{p}"}]},
    {"source": "snmp", "cis": [{"class": "Server", "serial_number": "S-TWO-{n}",
                                "mac_addresses": ["02:00:00:00:0{n}:09"], "partition": "{p}"}]},
    {"source": "ssh", "cis": [{"class": "Server", "hostname": "db-{n}", "ip_addresses": ["10.0.{n}.9"],
                               "mac_addresses": ["02:00:00:00:0{n}:09"]}]},
]


def fill(doc: Any, n: int, p: str) -> Any:
    if isinstance(doc, dict):
        return {k: fill(v, n, p) for k, v in doc.items()}
    if isinstance(doc, list):
        return [fill(v, n, p) for v in doc]
    return doc.format(n=n, p=p) if isinstance(doc, str) else doc


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store = SqliteStore(Path(tmp_path_factory.mktemp("resolve")) / "r.db")
    for n, p in ((1, "dc"), (2, "dc"), (3, "aws")):  # three conflicts; the third in partition aws
        for doc in ITEMS:
            ingest(store, Batch.from_dict(fill(doc, n, p)))
    token_for = make_token_factory(store)
    settings = ApiSettings(impact_poll_seconds=0.2, allowed_networks=[ipaddress.ip_network("127.0.0.0/8")])
    with TestClient(create_app(store, settings), raise_server_exceptions=False) as client:
        yield {"store": store, "client": client, "token_for": token_for}
    store.close()


def auth(env: dict[str, Any], role: str = "operator", **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['token_for'](role, **kw)}"}


def conflict_of(env: dict[str, Any], hostname: str) -> Any:
    store = env["store"]
    return next(c for c in store.conflicts("all") if hostname in c.item)


def test_merge_and_keep_separate(env: dict[str, Any]) -> None:
    c, store = env["client"], env["store"]
    first = conflict_of(env, "db-1")
    dry = c.post(f"/api/v1/conflicts/{first.id}/resolve", json={"action": "merge", "dry_run": True},
                 headers=auth(env))
    assert dry.status_code == 200 and dry.json()["merge"]["dry_run"] is True
    assert store.conflict(first.id).resolution is None
    r = c.post(f"/api/v1/conflicts/{first.id}/resolve", json={"action": "merge", "keep": first.ci_ids[1]},
               headers=auth(env))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["conflict"]["resolution"] == "merged" and body["merge"]["kept"] == first.ci_ids[1]
    assert body["conflict"]["resolved_by"].endswith("operator")
    assert store.get_ci(first.ci_ids[0]).id == first.ci_ids[1]
    actors = [e.actor for e in store.events([first.ci_ids[1]]) if e.kind == "ci.merged"]
    assert actors == [body["conflict"]["resolved_by"]]
    again = c.post(f"/api/v1/conflicts/{first.id}/resolve", json={"action": "merge"}, headers=auth(env))
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")

    second = conflict_of(env, "db-2")
    r = c.post(f"/api/v1/conflicts/{second.id}/resolve", json={"action": "keep_separate"}, headers=auth(env))
    assert r.status_code == 200 and r.json()["conflict"]["resolution"] == "keep_separate" and r.json()["merge"] is None
    res = ingest(store, Batch.from_dict(fill(ITEMS[2], 2, "dc")))
    assert res.conflicts == []  # not raised again
    assert len(store.search(SearchQuery(text="db-2")).items) == 1  # still two CIs: one named db-2, one by serial
    listed = c.get(f"/api/v1/conflicts/{second.id}", headers=auth(env, "viewer")).json()
    assert listed["resolution"] == "keep_separate"


def test_errors_are_problems(env: dict[str, Any]) -> None:
    c = env["client"]
    third = conflict_of(env, "db-3")
    for body, status in (({"action": "squash"}, 422), ({"action": "merge", "keep": "ci-nope"}, 404),
                         ({"action": "merge", "extra": 1}, 422)):
        r = c.post(f"/api/v1/conflicts/{third.id}/resolve", json=body, headers=auth(env))
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = c.post("/api/v1/conflicts/conflict-nope/resolve", json={"action": "merge"}, headers=auth(env))
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = c.post(f"/api/v1/conflicts/{third.id}/resolve", json={"action": "merge"}, headers=auth(env, "viewer"))
    assert r.status_code == 403


def test_a_conflict_in_a_hidden_partition_is_missing(env: dict[str, Any]) -> None:
    c, store = env["client"], env["store"]
    third = conflict_of(env, "db-3")
    hidden = c.post(f"/api/v1/conflicts/{third.id}/resolve", json={"action": "keep_separate"},
                    headers=auth(env, partitions=["dc"]))
    missing = c.post("/api/v1/conflicts/conflict-nope/resolve", json={"action": "keep_separate"},
                     headers=auth(env, partitions=["dc"]))
    assert hidden.status_code == missing.status_code == 404
    assert store.conflict(third.id).resolution is None
    r = c.post(f"/api/v1/conflicts/{third.id}/resolve", json={"action": "keep_separate"},
               headers=auth(env, partitions=["aws"]))
    assert r.status_code == 200


def test_listing_and_reading_conflicts_shows_only_the_callers_partitions(env: dict[str, Any]) -> None:
    c = env["client"]
    third = conflict_of(env, "db-3")  # its CIs are in partition aws
    dc, everything = auth(env, "viewer", partitions=["dc"]), auth(env, "viewer")
    listed = c.get("/api/v1/conflicts", headers=dc, params={"state": "all"}).json()
    assert third.id not in {i["id"] for i in listed["items"]}
    assert listed["total"] == len(listed["items"]) >= 1
    assert third.id in {i["id"] for i in c.get("/api/v1/conflicts", headers=everything,
                                               params={"state": "all"}).json()["items"]}
    hidden = c.get(f"/api/v1/conflicts/{third.id}", headers=dc)
    missing = c.get("/api/v1/conflicts/conflict-nope", headers=dc)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(third.id, "X") == missing.json()["detail"].replace("conflict-nope", "X")
    assert c.get(f"/api/v1/conflicts/{third.id}", headers=auth(env, "viewer", partitions=["aws"])).status_code == 200


def test_the_state_filter_open_by_default_closed_resolved_all(env: dict[str, Any]) -> None:
    c, store = env["client"], env["store"]
    viewer = auth(env, "viewer")
    # By now the module's three conflicts are resolved; one more is closed by ageing.
    snmp = {"source": "snmp", "scope": "10.9.0.0/24", "actor": "netops"}
    ingest(store, Batch.from_dict({**snmp, "complete": True, "cis": [
        {"class": "Server", "serial_number": "AG-1", "management_ip": "10.9.0.5"}]}))
    ingest(store, Batch.from_dict({"source": "import", "cis": [{"class": "Server", "serial_number": "AG-2"}]}))
    (raised,) = ingest(store, Batch.from_dict({**snmp, "complete": False, "cis": [
        {"class": "Server", "serial_number": "AG-2", "management_ip": "10.9.0.5"}]})).conflicts
    assert [i["id"] for i in c.get("/api/v1/conflicts", headers=viewer).json()["items"]] == [raised.id]
    closing = ingest(store, Batch.from_dict({**snmp, "complete": True, "cis": [
        {"class": "Server", "serial_number": "AG-1", "management_ip": "10.9.0.6"},
        {"class": "Server", "serial_number": "AG-2", "management_ip": "10.9.0.5"}]}))

    default = c.get("/api/v1/conflicts", headers=viewer).json()
    assert (default["items"], default["total"]) == ([], 0)  # nothing open
    closed = c.get("/api/v1/conflicts", headers=viewer, params={"state": "closed"}).json()["items"]
    assert [(i["id"], i["state"], i["closed_run"], i["closed_by"]) for i in closed] == [
        (raised.id, "closed", closing.run_id, "netops")]
    assert "10.9.0.5" in closed[0]["closed_reason"] and closed[0]["resolution"] is None
    resolved = c.get("/api/v1/conflicts", headers=viewer, params={"state": "resolved"}).json()["items"]
    assert sorted(i["resolution"] for i in resolved) == ["keep_separate", "keep_separate", "merged"]
    assert {i["state"] for i in resolved} == {"resolved"}
    every = c.get("/api/v1/conflicts", headers=viewer, params={"state": "all", "limit": 2}).json()
    assert every["total"] == 4 and len(every["items"]) == 2 and every["next_cursor"]
    dc = c.get("/api/v1/conflicts", headers=auth(env, "viewer", partitions=["dc"]),
               params={"state": "resolved"}).json()
    # db-3's is in partition aws; db-1's names a CI merged away, which no partition shows (as before states)
    assert dc["total"] == 1 and "db-2" in dc["items"][0]["item"]
    one = c.get(f"/api/v1/conflicts/{raised.id}", headers=viewer)
    assert one.status_code == 200 and one.json()["state"] == "closed"
    bad = c.get("/api/v1/conflicts", headers=viewer, params={"state": "gone"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    late = c.post(f"/api/v1/conflicts/{raised.id}/resolve", json={"action": "keep_separate"}, headers=auth(env))
    assert late.status_code == 409 and "closed" in late.json()["detail"]
