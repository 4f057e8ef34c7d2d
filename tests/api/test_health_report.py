"""``GET /api/v1/health/report`` over the sample estate: viewers read it, partition-limited tokens get 403."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import TokenFor
from tests.api.test_auth_matrix import table


def test_a_viewer_reads_the_report_and_nothing_is_stored(client: TestClient, token_for: TokenFor,
                                                         sample_store: object) -> None:
    r = client.get("/api/v1/health/report", headers={"Authorization": f"Bearer {token_for('viewer')}"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["schema_version"] == 1 and doc["total"] == len(doc["items"]) and doc["next"] is None
    assert 0 <= doc["overall"] <= 100 and {"completeness", "correctness", "staleness"} == set(doc["dimensions"])
    assert sum(c["cis"] for c in doc["classes"]) == 313
    assert sample_store.health_snapshots() == []  # type: ignore[attr-defined]
    r = client.get("/api/v1/health/report", params={"class": "Host", "max_cis": 0})
    assert r.status_code == 200
    assert {c["class"] for c in r.json()["classes"]} == {"Server", "VirtualMachine"}
    assert all(i["cis"] == [] for i in r.json()["items"])


def test_partition_limited_tokens_get_403_and_an_unknown_class_422(client: TestClient, token_for: TokenFor) -> None:
    token = token_for("viewer", partitions=["dc-fra"])
    r = client.get("/api/v1/health/report", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert "limited to partitions" in r.json()["detail"]
    r = client.get("/api/v1/health/report", params={"class": "Nope"})
    assert r.status_code == 422 and "unknown CI class 'Nope'" in r.json()["detail"]


def test_the_route_is_in_the_role_matrix_as_a_viewer_route(client: TestClient) -> None:
    assert ("GET", "/api/v1/health/report", "viewer") in table(client.app)  # type: ignore[arg-type]
    assert ("GET", "/healthz", None) in table(client.app)  # type: ignore[arg-type]


def test_answers_are_kept_while_the_graph_is_unchanged(client: TestClient) -> None:
    first = client.get("/api/v1/health/report", params={"max_cis": 3}).json()
    again = client.get("/api/v1/health/report", params={"max_cis": 3}).json()
    assert again["at"] == first["at"]  # the kept answer
    fresh = client.get("/api/v1/health/report", params={"max_cis": 3}, headers={"Cache-Control": "no-cache"}).json()
    assert fresh["at"] > first["at"] and fresh["overall"] == first["overall"]
