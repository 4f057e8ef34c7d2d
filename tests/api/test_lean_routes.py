"""``GET /cis/{ref}`` is answered by a lean handler (``api.lean``): the same answers as its declaration promises.

The role x route matrix already calls it with every role and bad tokens; here the rest of what the
declared endpoint does: ``fields=``, the ETag that a PATCH's ``If-Match`` accepts, problem+json for
a missing CI and a bad ``fields``, look-up by name, and a cached token that expires meanwhile.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.auth import load_token_key
from api.lean import lean_handler
from cmdb.tokens import create_token
from tests.api.conftest import TokenFor
from tests.api.test_auth_matrix import api_routes


def _route(client: TestClient, method: str, path: str) -> APIRoute:
    return next(r for p, r in api_routes(client.app) if p == path and method in r.methods)  # type: ignore[arg-type]


def test_get_ci_is_lean_and_keeps_its_declaration(client: TestClient) -> None:
    route = _route(client, "GET", "/api/v1/cis/{ref}")
    assert lean_handler(route.endpoint) is not None
    assert lean_handler(_route(client, "PATCH", "/api/v1/cis/{ref}").endpoint) is None
    doc = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/cis/{ref}"]["get"]
    assert {p["name"] for p in doc["parameters"]} == {"ref", "fields"} and doc["security"]


def test_lean_get_answers_as_the_declared_route(client: TestClient, sample_store: Any) -> None:
    r = client.get("/api/v1/cis/sw-core-fra-1")  # by name
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    ci = r.json()
    assert ci["name"] == "sw-core-fra-1" and set(ci) == {"id", "class", "name", "status", "attrs", "created_at",
                                                          "updated_at"}
    assert client.get(f"/api/v1/cis/{ci['id']}").json() == ci
    some = client.get(f"/api/v1/cis/{ci['id']}", params={"fields": "name,attrs.hostname"}).json()
    assert some == {"name": "sw-core-fra-1", "attrs": {k: v for k, v in ci["attrs"].items() if k == "hostname"}}
    bad = client.get(f"/api/v1/cis/{ci['id']}", params={"fields": "secret"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    missing = client.get("/api/v1/cis/no-such-ci")
    assert missing.status_code == 404 and missing.json()["instance"] == "/api/v1/cis/no-such-ci"
    # The ETag of the lean GET is the one a PATCH checks.
    etag = r.headers["etag"]
    ok = client.patch(f"/api/v1/cis/{ci['id']}", json={"attrs": {"description": "lean"}}, headers={"If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert client.get(f"/api/v1/cis/{ci['id']}").headers["etag"] == ok.headers["etag"] != etag
    stale = client.patch(f"/api/v1/cis/{ci['id']}", json={"attrs": {"description": "x"}}, headers={"If-Match": etag})
    assert stale.status_code == 412


def test_a_cached_token_that_expires_is_refused(client: TestClient, sample_store: Any, token_for: TokenFor) -> None:
    token, _ = create_token(sample_store, load_token_key(sample_store), "lean-expiring", "viewer",
                            expires=timedelta(seconds=2))
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/cis/sw-core-fra-1", headers=h).status_code == 200  # verified and cached
    time.sleep(2.2)
    r = client.get("/api/v1/cis/sw-core-fra-1", headers=h)
    assert r.status_code == 401 and "expired" in r.json()["detail"] and token not in r.text
