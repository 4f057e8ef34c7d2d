"""The API's routes through FastAPI's TestClient on a SQLite store holding the sample estate."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from impact.incident import analyse_incident, report_dict
from impact.states import State

V1 = "/api/v1"
PROBLEM = "application/problem+json"


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    return body


# -- CIs: reading ------------------------------------------------------------------------------------
def test_cursor_pages_walk_every_match_once(client: TestClient, sample_store: SqliteStore) -> None:
    total = sample_store.search(SearchQuery(classes=["Server", "VirtualMachine"], limit=1)).total
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        r = client.get(f"{V1}/cis", params={"class": "Host", "limit": 3, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        body = r.json()
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == body["total"] >= total > 3


def test_filters_match_the_cli_and_fields_trims(client: TestClient) -> None:
    r = client.get(f"{V1}/cis", params={"class": "Switch", "q": "core", "fields": "id,name,attrs.serial_number"})
    items = r.json()["items"]
    assert items and all("core" in c["name"] for c in items)
    assert all(set(c) <= {"id", "name", "attrs"} and set(c.get("attrs", {})) <= {"serial_number"} for c in items)
    r = client.get(f"{V1}/cis", params={"attr": "environment=production", "class": "Service"})
    assert r.json()["items"] and all(c["attrs"]["environment"] == "production" for c in r.json()["items"])
    body = assert_problem(client.get(f"{V1}/cis", params={"fields": "id,secret"}), 422)
    assert "secret" in body["detail"]
    assert_problem(client.get(f"{V1}/cis", params={"cursor": "not-a-cursor"}), 422)


def test_a_ci_by_id_name_or_identity_value_with_an_etag(client: TestClient, sample_store: SqliteStore) -> None:
    by_name = client.get(f"{V1}/cis/sw-core-fra-1")
    assert by_name.status_code == 200 and by_name.headers["etag"].startswith('W/"')
    ci = by_name.json()
    serial = ci["attrs"]["serial_number"]
    assert client.get(f"{V1}/cis/{ci['id']}").json() == ci
    assert client.get(f"{V1}/cis/{serial}").json()["id"] == ci["id"]
    body = assert_problem(client.get(f"{V1}/cis/no-such-thing"), 404)
    assert "no-such-thing" in body["detail"] and body["instance"] == f"{V1}/cis/no-such-thing"


def test_provenance_history_as_of_and_relationships(client: TestClient) -> None:
    prov = client.get(f"{V1}/cis/sw-core-fra-1/provenance").json()
    assert prov["attributes"]["serial_number"] and prov["sightings"]
    hist = client.get(f"{V1}/cis/sw-core-fra-1/history").json()
    assert hist[0]["kind"] == "ci.created"
    snap = client.get(f"{V1}/cis/sw-core-fra-1/as-of", params={"at": hist[0]["at"]}).json()
    assert snap["status"] == "active" and snap["attrs"]["serial_number"]
    assert_problem(client.get(f"{V1}/cis/sw-core-fra-1/as-of", params={"at": "1999-01-01"}), 404)
    ci_id = client.get(f"{V1}/cis/sw-core-fra-1").json()["id"]
    both = client.get(f"{V1}/cis/sw-core-fra-1/relationships").json()
    out = client.get(f"{V1}/cis/sw-core-fra-1/relationships", params={"direction": "out"}).json()
    assert both and all(ci_id in (r["from"], r["to"]) for r in both)
    assert out and all(r["from"] == ci_id for r in out)
    db = client.get(f"{V1}/cis/db-fra-01").json()["id"]
    inward = client.get(f"{V1}/cis/db-fra-01/relationships", params={"direction": "in"}).json()
    assert inward and all(r["to"] == db for r in inward)


# -- CIs: writing -----------------------------------------------------------------------------------
def test_create_update_with_if_match_and_retire(client: TestClient, sample_store: SqliteStore) -> None:
    r = client.post(f"{V1}/cis", json={"class": "Server", "attrs": {"fqdn": "api-made.example.com", "cpu_count": 2}})
    assert r.status_code == 201, r.text
    ci, etag = r.json(), r.headers["etag"]
    assert r.headers["location"] == f"{V1}/cis/{ci['id']}"
    dup = assert_problem(client.post(f"{V1}/cis", json={"class": "Server", "attrs": {"fqdn": "api-made.example.com"}}),
                         409)
    assert ci["id"] in dup["detail"]

    ok = client.patch(f"{V1}/cis/{ci['id']}", json={"attrs": {"cpu_count": 8}}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.json()["attrs"]["cpu_count"] == 8
    assert ok.headers["etag"] != etag
    events = len(sample_store.events([ci["id"]]))
    stale = client.patch(f"{V1}/cis/{ci['id']}", json={"attrs": {"cpu_count": 16}}, headers={"If-Match": etag})
    assert_problem(stale, 412)
    assert sample_store.get_ci(ci["id"]).attrs["cpu_count"] == 8  # type: ignore[union-attr]
    assert len(sample_store.events([ci["id"]])) == events  # nothing written
    changed = [e for e in sample_store.events([ci["id"]]) if e.kind == "ci.attr"]
    assert changed[-1].actor == "t0-admin" and changed[-1].source == "manual"

    retired = client.delete(f"{V1}/cis/{ci['id']}", headers={"If-Match": ok.headers["etag"]})
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert sample_store.get_ci(ci["id"]).status == "retired"  # type: ignore[union-attr]
    assert [e.kind for e in sample_store.events([ci["id"]])][-1] == "ci.status"


def test_retiring_retires_relationships_too(client: TestClient, sample_store: SqliteStore) -> None:
    doc = {"source": "import:t", "cis": [{"ref": "a", "class": "Server", "fqdn": "ret-a.example.com"},
                                         {"ref": "b", "class": "Server", "fqdn": "ret-b.example.com"}],
           "relationships": [{"type": "DEPENDS_ON", "from": "a", "to": "b"}]}
    assert client.post(f"{V1}/batches", json=doc).status_code == 200
    assert client.delete(f"{V1}/cis/ret-b.example.com").status_code == 200
    a = client.get(f"{V1}/cis/ret-a.example.com").json()
    rels = client.get(f"{V1}/cis/{a['id']}/relationships", params={"include_retired": "true"}).json()
    assert [r["status"] for r in rels] == ["retired"]
    # a later batch from discovery does not bring a CI retired by hand back
    assert client.post(f"{V1}/batches", json=doc).status_code == 200
    assert client.get(f"{V1}/cis/ret-b.example.com").json()["status"] == "retired"


def test_bad_write_bodies_are_problems_naming_the_field(client: TestClient) -> None:
    body = assert_problem(client.post(f"{V1}/cis", json={"attrs": {}}), 422)
    assert any(e["path"] == "body/class" for e in body["errors"])
    body = assert_problem(client.post(f"{V1}/cis", json={"class": "Server", "attrs": {"cpu_count": "many"}}), 422)
    assert "cpu_count" in body["detail"]
    assert_problem(client.post(f"{V1}/cis", json={"class": "NoSuchClass", "attrs": {"name": "x"}}), 422)


# -- batches ------------------------------------------------------------------------------------------
def test_batches_are_atomic_and_idempotent(client: TestClient, sample_store: SqliteStore) -> None:
    doc = {"source": "import:idem", "cis": [{"ref": "x", "class": "Server", "fqdn": "idem-1.example.com"},
                                            {"ref": "y", "class": "Server", "fqdn": "idem-2.example.com"}]}
    first = client.post(f"{V1}/batches", json=doc, headers={"Idempotency-Key": "retry-me"})
    assert first.status_code == 200 and first.json()["created"] == 2 and first.json()["replayed"] is False
    stats = sample_store.stats()
    again = client.post(f"{V1}/batches", json=doc, headers={"Idempotency-Key": "retry-me"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert {**again.json(), "replayed": False} == first.json()
    assert sample_store.stats() == stats
    other = {**doc, "cis": doc["cis"][:1]}
    assert "retry-me" in assert_problem(client.post(f"{V1}/batches", json=other,
                                                    headers={"Idempotency-Key": "retry-me"}), 422)["detail"]
    bad = {"source": "import:idem", "cis": [{"ref": "z", "class": "Server", "fqdn": "idem-3.example.com"},
                                            {"ref": "w", "class": "Server", "cpu_count": 3}]}
    body = assert_problem(client.post(f"{V1}/batches", json=bad), 422)
    assert "cis[1]" in body["detail"]
    assert client.get(f"{V1}/cis/idem-3.example.com").status_code == 404  # nothing of it written


def test_a_body_over_the_limit_is_413(sample_store: SqliteStore, token_for: Any) -> None:
    app = create_app(sample_store, ApiSettings(max_body_bytes=1000, warm_impact=False))
    with TestClient(app, headers={"Authorization": f"Bearer {token_for('admin')}"}) as c:
        doc = {"source": "import:big", "cis": [{"class": "Server", "fqdn": f"big-{i}.example.com"} for i in range(50)]}
        assert_problem(c.post(f"{V1}/batches", json=doc), 413)

        def chunks() -> Any:
            yield b'{"source": "import:big", "cis": ['
            for i in range(100):
                yield b'{"class": "Server", "fqdn": "chunk-%d.example.com"},' % i
            yield b'{"class": "Server", "fqdn": "last.example.com"}]}'

        assert_problem(c.post(f"{V1}/batches", content=chunks(), headers={"content-type": "application/json"}), 413)
    assert sample_store.find_by_key("device:fqdn=last.example.com") is None


# -- errors ------------------------------------------------------------------------------------------
def test_framework_errors_are_problems(client: TestClient, sample_store: SqliteStore, token_for: Any) -> None:
    assert "/api/v1/nowhere" in assert_problem(client.get(f"{V1}/nowhere"), 404)["detail"]
    assert_problem(client.put(f"{V1}/batches", json={}), 405)
    body = assert_problem(client.get(f"{V1}/cis", params={"limit": "many"}), 422)
    assert body["errors"][0]["path"] == "query/limit"
    assert_problem(client.post(f"{V1}/batches", content=b"{not json", headers={"content-type": "application/json"}),
                   422)
    app = create_app(sample_store, ApiSettings(warm_impact=False))

    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        body = assert_problem(c.get("/boom"), 500)
        assert "secret" not in body["detail"]
        assert_problem(c.get(f"{V1}/cis"), 401)


# -- impact ------------------------------------------------------------------------------------------
def test_incident_answers_as_the_cli_does_in_three_renderings(client: TestClient, sample_store: SqliteStore) -> None:
    r = client.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"], "urgency": "high"})
    assert r.status_code == 200, r.text
    data = r.json()
    cli = report_dict(analyse_incident(sample_store, ["sw-core-fra-1"], State.DOWN, "high"))
    assert [(s["name"], s["state"]) for s in data["services"]] == [(s["name"], s["state"]) for s in cli["services"]]
    assert data["priority"] == cli["priority"] and data["index_writes"] is not None
    assert data["affected_total"] == len(cli["affected"]) == len(data["affected"])  # under the default cut
    cut = client.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"], "max_affected": 2,
                                                      "max_reasons": 1}).json()
    assert [a["id"] for a in cut["affected"]] == [a["id"] for a in cli["affected"][:2]]
    assert cut["affected_total"] == len(cli["affected"])
    assert all(len(sh["reasons"]) <= 1 <= sh["reasons_total"] for sh in cut["stakeholders"])
    md = client.post(f"{V1}/impact/incident?format=markdown", json={"cis": ["sw-core-fra-1"]})
    assert md.headers["content-type"].startswith("text/markdown") and "| tier | service |" in md.text
    html = client.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"]}, headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html") and "<table>" in html.text
    assert_problem(client.post(f"{V1}/impact/incident", json={"cis": ["nope-nope"]}), 404)
    body = assert_problem(client.post(f"{V1}/impact/incident", json={"cis": []}), 422)
    assert body["errors"][0]["path"] == "body/cis"


def test_change_spof_and_expiry(client: TestClient) -> None:
    change = client.post(f"{V1}/impact/change", json={"cis": ["db-fra-01"], "start": "2026-12-01T22:00",
                                                       "end": "2026-12-01T23:00"})
    assert change.status_code == 200 and change.json()["risk"] in ("low", "medium", "high")
    md = client.post(f"{V1}/impact/change", json={"cis": ["db-fra-01"], "start": "2026-12-01T22:00",
                                                   "end": "2026-12-01T23:00"}, params={"format": "markdown"})
    assert md.text.startswith("# Change impact")
    assert_problem(client.post(f"{V1}/impact/change", json={"cis": ["db-fra-01"], "start": "2026-12-01T23:00",
                                                             "end": "2026-12-01T22:00"}), 422)
    spof = client.get(f"{V1}/impact/spof").json()["items"]
    assert "fraud-fra-01" in {s["name"] for s in spof}
    exp = client.get(f"{V1}/impact/expiry", params={"within_days": 3650}).json()
    assert exp["expiring"] and exp["services"]


def test_the_warm_index_follows_writes_and_requests_never_rebuild_it(client: TestClient) -> None:
    def refreshes() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("cmdb_impact_index_refreshes_total"):
                return float(line.split()[-1])
        return 0.0

    client.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"]})
    # The index catches up with the earlier tests' writes: at once, or after the build in flight (however slow
    # the machine; the build lock waits for it, and a build is counted before that lock opens).
    client.app.state.api.impact.refresh()  # type: ignore[attr-defined]
    before = refreshes()
    for _ in range(5):
        client.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"]})
    assert refreshes() == before  # no write, no rebuild
    switch = client.get(f"{V1}/cis/sw-core-fra-1").json()
    doc = {"source": "import:warm", "cis": [{"ref": "s", "class": "Service", "name": "Warm Service", "tier": 1,
                                          "service_type": "business"}],
           "relationships": [{"type": "DEPENDS_ON", "from": "s",
                              "to": {"class": "Switch", "serial_number": switch["attrs"]["serial_number"]}}]}
    assert client.post(f"{V1}/batches", json=doc).status_code == 200
    deadline = time.monotonic() + 60
    names: set[str] = set()
    while time.monotonic() < deadline and "Warm Service" not in names:
        time.sleep(0.1)
        names = {s["name"] for s in client.post(f"{V1}/impact/incident", json={"cis": ["sw-core-fra-1"]}).json()[
            "services"]}
    assert "Warm Service" in names
    assert refreshes() > before


# -- runs, health, metrics ---------------------------------------------------------------------------
def test_a_started_scan_runs_in_the_background(client: TestClient) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        r = client.post(f"{V1}/runs", json={"targets": ["127.0.0.1"], "ports": str(port)})
        assert r.status_code == 202, r.text
        url = r.headers["location"]
        deadline = time.monotonic() + 120
        run = client.get(url).json()
        while run["job"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            run = client.get(url).json()
        assert run["job"] == "finished", run
        assert [o["outcome"] for o in run["outcomes"]] == ["ok"] and run["actor"] == "t0-admin"
        assert run["run_id"] in {x["run_id"] for x in client.get(f"{V1}/runs").json()}
    finally:
        stop.set()
        t.join()
        listener.close()
    body = assert_problem(client.post(f"{V1}/runs", json={"targets": ["192.0.2.1"]}), 422)
    assert "192.0.2.1" in body["detail"]
    assert_problem(client.get(f"{V1}/runs/nope"), 404)


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    client.get(f"{V1}/cis/sw-core-fra-1")
    text = client.get("/metrics").text
    assert 'cmdb_http_requests_total{method="GET",route="/api/v1/cis/{ref}",status="200"}' in text
    assert "cmdb_http_request_duration_seconds_bucket" in text
    assert 'cmdb_ingest_batches_total{source="import:idem"}' in text or "cmdb_ingest_batches_total" in text


def test_openapi_has_examples_and_problem_answers(client: TestClient) -> None:
    doc = client.get(f"{V1}/openapi.json").json()
    assert "Problem" in doc["components"]["schemas"]
    post = doc["paths"]["/api/v1/batches"]["post"]
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert client.get(f"{V1}/docs").status_code == 200
    assert "examples" in str(doc["paths"]["/api/v1/impact/incident"]["post"]["requestBody"]) or \
        "examples" in str(doc["components"]["schemas"]["IncidentIn"])


def test_repeated_impact_questions_are_answered_from_the_cache_until_a_write(client: TestClient) -> None:
    cache = client.app.state.api.answers  # type: ignore[attr-defined]
    body = {"cis": ["lb-fra-1"], "urgency": "low"}
    first = client.post(f"{V1}/impact/incident", json=body).json()
    hits = cache.hits
    assert client.post(f"{V1}/impact/incident", json=body).json() == first
    assert cache.hits == hits + 1
    misses = cache.misses
    client.post(f"{V1}/impact/incident", json=body, headers={"Cache-Control": "no-cache"})
    assert cache.hits == hits + 1 and cache.misses == misses  # bypassed, not stored
