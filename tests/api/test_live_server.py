"""The real server: ``cmdb serve`` under uvicorn on a loopback port, driven with httpx, on SQLite and Neo4j."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import LiveServer

V1 = "/api/v1"


def drive(server: LiveServer) -> None:
    with server.client() as c:
        ci = c.get(f"{V1}/cis/sw-core-fra-1")
        assert ci.status_code == 200 and ci.headers["etag"]
        assert c.get(f"{V1}/cis/{ci.json()['attrs']['serial_number']}").json()["id"] == ci.json()["id"]
        page = c.get(f"{V1}/cis", params={"class": "Service", "limit": 5}).json()
        assert page["total"] >= len(page["items"]) > 0
        inc = c.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"], "urgency": "high"})
        assert inc.status_code == 200 and inc.json()["services"]
        assert c.get(f"{V1}/impact/spof").json()["items"]
        fqdn = f"live-{uuid.uuid4().hex[:8]}.example.com"
        doc = {"source": "import:live", "cis": [{"ref": "a", "class": "Server", "fqdn": fqdn}]}
        key = {"Idempotency-Key": uuid.uuid4().hex}
        first = c.post(f"{V1}/batches", json=doc, headers=key)
        again = c.post(f"{V1}/batches", json=doc, headers=key)
        assert first.json()["created"] == 1 and again.json()["replayed"] is True
        assert again.json()["run_id"] == first.json()["run_id"]
        made = c.get(f"{V1}/cis/{fqdn}")
        assert made.status_code == 200
        stale = c.patch(f"{V1}/cis/{fqdn}", json={"attrs": {"cpu_count": 2}}, headers={"If-Match": 'W/"old"'})
        assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
        ok = c.patch(f"{V1}/cis/{fqdn}", json={"attrs": {"cpu_count": 2}}, headers={"If-Match": made.headers["etag"]})
        assert ok.status_code == 200 and ok.json()["attrs"]["cpu_count"] == 2
        hist = c.get(f"{V1}/cis/{fqdn}/history").json()
        assert [e["kind"] for e in hist] == ["ci.created", "ci.attr"] and hist[-1]["actor"] == "t0-admin"
        assert c.get(f"{V1}/nowhere").status_code == 404
        assert c.get("/readyz").json()["status"] == "ready"
        assert "cmdb_http_requests_total" in c.get("/metrics").text


def test_live_server_on_sqlite(live_sqlite: LiveServer) -> None:
    drive(live_sqlite)


@pytest.mark.neo4j
def test_live_server_on_neo4j(live_neo4j: LiveServer) -> None:
    drive(live_neo4j)
