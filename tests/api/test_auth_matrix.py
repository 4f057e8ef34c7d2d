"""Every route x every role, built from the app's route table: a route without an auth rule fails here.

For each API route the test finds the role its ``require(...)`` dependency names (or the
``x-cmdb-public`` mark of the few open routes), then calls it with no token (401), with a token of
every role (403 exactly when the role falls short, never 401) and with bad tokens (401).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.auth import required_role, role_allows
from cmdb.store.tokens import ROLES
from cmdb.tokens import revoke_token
from tests.api.conftest import TokenFor

PUBLIC_MARK = "x-cmdb-public"


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every FastAPI route, through included routers of any depth."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
        for r in routes:
            if isinstance(r, APIRoute):
                yield prefix + r.path, r
            elif hasattr(r, "original_router"):  # FastAPI's included router
                ctx = getattr(r, "include_context", None)
                yield from walk(list(r.original_router.routes), prefix + (getattr(ctx, "prefix", "") or ""))
            elif hasattr(r, "routes") and hasattr(r, "path"):  # a mount
                yield from walk(list(r.routes), prefix + r.path)

    yield from walk(list(app.routes), "")


def route_roles(route: APIRoute) -> set[str]:
    """The roles named by every ``require`` dependency of ``route`` (its whole dependency tree)."""
    found: set[str] = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        role = required_role(dep.call)
        if role is not None:
            found.add(role)
        stack.extend(dep.dependencies)
    return found


def table(app: FastAPI) -> list[tuple[str, str, str | None]]:
    """(method, path, role or None for public) of every route."""
    rows: list[tuple[str, str, str | None]] = []
    for path, route in api_routes(app):
        public = bool((route.openapi_extra or {}).get(PUBLIC_MARK))
        roles = route_roles(route)
        for method in sorted(route.methods - {"HEAD"}):
            if public:
                assert not roles, f"{method} {path} is marked public but requires {roles}"
                rows.append((method, path, None))
            else:
                assert len(roles) == 1, (f"{method} {path} declares no auth rule: add "
                                         f"Depends(require('viewer'|'operator'|'admin'|'collector'))"
                                         if not roles else f"{method} {path} declares several roles {roles}")
                rows.append((method, path, roles.pop()))
    return rows


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-thing", path)


def call(client: TestClient, method: str, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    # Overriding the client's default admin header with an empty one sends no Authorization.
    kw: dict[str, Any] = {"headers": headers or {"Authorization": ""}}
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = {}
    return int(client.request(method, concrete(path), **kw).status_code)


def test_the_route_table_has_an_auth_rule_on_every_route(client: TestClient) -> None:
    rows = table(client.app)  # type: ignore[arg-type]
    assert len(rows) >= 20
    roles = {r for _, _, r in rows}
    assert {"viewer", "operator", "collector", "admin"} <= roles, roles
    assert ("POST", "/api/v1/batches", "collector") in rows
    public = {p for _, p, r in rows if r is None}
    assert public <= {"/healthz", "/readyz", "/metrics"}, public


def test_every_route_answers_401_without_a_token_and_403_exactly_for_short_roles(
        client: TestClient, token_for: TokenFor) -> None:
    tokens = {role: token_for(role, sources=["scan"]) if role == "collector" else token_for(role) for role in ROLES}
    bad = "cmdb_" + "A" * 43
    failures = []
    for method, path, role in table(client.app):  # type: ignore[arg-type]
        if role is None:
            assert call(client, method, path, None) not in (401, 403), f"{method} {path} is public"
            continue
        for token, what in ((None, "no token"), (bad, "an unknown token"), ("not-a-cmdb-token", "garbage")):
            got = call(client, method, path, token)
            if got != 401:
                failures.append(f"{method} {path} with {what}: {got}, want 401")
        for held, token in tokens.items():
            got = call(client, method, path, token)
            want_forbidden = not role_allows(held, role)
            if want_forbidden and got != 403:
                failures.append(f"{method} {path} as {held} (needs {role}): {got}, want 403")
            if not want_forbidden and got in (401, 403):
                failures.append(f"{method} {path} as {held} (needs {role}): {got}, want it let through")
    assert not failures, "\n".join(failures)


def test_role_order() -> None:
    assert role_allows("admin", "operator") and role_allows("operator", "viewer")
    assert not role_allows("viewer", "operator") and not role_allows("operator", "admin")
    assert role_allows("collector", "collector") and not role_allows("collector", "viewer")
    assert role_allows("operator", "collector") and not role_allows("viewer", "collector")


def test_401_and_403_are_problem_json_with_a_bearer_challenge(client: TestClient, token_for: TokenFor) -> None:
    r = client.get("/api/v1/cis", headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]
    r = client.get("/api/v1/cis", headers={"Authorization": "Bearer cmdb_" + "B" * 43})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token_for('operator')}"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert "needs an admin token" in r.json()["detail"]


def test_a_revoked_token_stops_working(client: TestClient, token_for: TokenFor, sample_store: Any) -> None:
    import api.auth

    token = token_for("viewer", partitions=["revoke-me"])
    assert client.get("/api/v1/cis", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    name = next(t.name for t in sample_store.tokens() if t.partitions == ["revoke-me"])
    revoke_token(sample_store, name)
    # Forget the verified token (else the revocation takes effect within CACHE_SECONDS).
    client.app.state.token_cache.entries.clear()  # type: ignore[attr-defined]
    r = client.get("/api/v1/cis", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"] and token not in r.text
    assert api.auth.CACHE_SECONDS <= 5


def test_last_used_is_recorded_off_the_request_path(client: TestClient, token_for: TokenFor,
                                                    sample_store: Any) -> None:
    import time

    token = token_for("viewer", partitions=["last-used"])
    name = next(t.name for t in sample_store.tokens() if t.partitions == ["last-used"])
    assert sample_store.get_token(name).last_used is None
    assert client.get("/api/v1/cis", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    deadline = time.monotonic() + 60  # a background write: at once on a quiet machine
    while sample_store.get_token(name).last_used is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sample_store.get_token(name).last_used is not None
