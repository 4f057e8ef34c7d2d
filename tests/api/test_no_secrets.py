"""No token, token hash, server key or password ever appears in a log line, a history event or an error body.

The test drives the API through good and bad tokens, every kind of error and writes that record
history, capturing every log record at DEBUG; then it greps the captured logs, every error body,
the whole history and the store's dump for each secret, and the same for the CLI's token listing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import load_token_key
from api.state import ApiSettings
from cmdb.batch import Batch
from cmdb.cli import SAMPLE_ESTATE
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from cmdb.tokens import create_token, hash_token, key_file_for, revoke_token
from product.cli import app as cli_app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    store = SqliteStore(tmp_path / "s.db")
    ingest(store, Batch.from_file(SAMPLE_ESTATE))
    key = load_token_key(store)
    tokens = {role: create_token(store, key, f"{role}-bot", role, sources=["scan"] if role == "collector" else None)[0]
              for role in ("admin", "operator", "viewer", "collector")}
    limited = create_token(store, key, "limited", "viewer", partitions=["aws"])[0]
    revoked = create_token(store, key, "gone", "viewer")[0]
    revoke_token(store, "gone")
    try:
        yield {"store": store, "key": key, "tokens": {**tokens, "limited": limited, "revoked": revoked},
               "tmp": tmp_path}
    finally:
        store.close()


def test_secrets_stay_out_of_logs_history_and_error_bodies(world: dict[str, Any],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    store, tokens = world["store"], world["tokens"]
    near_miss = tokens["viewer"][:-3] + ("aaa" if not tokens["viewer"].endswith("aaa") else "bbb")
    presented = [*tokens.values(), near_miss, "cmdb_" + "Z" * 43]
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    created_token = None
    with TestClient(create_app(store, ApiSettings(impact_poll_seconds=0.2)), raise_server_exceptions=False) as c:
        def go(method: str, path: str, token: str | None, **kw: Any) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = c.request(method, path, headers={**headers, **kw.pop("headers", {})}, **kw)
            if r.status_code >= 400:
                errors.append(r.text + json.dumps(dict(r.headers)))
            return r

        for i, token in enumerate(presented):
            for method, path, body in (
                ("GET", "/api/v1/cis", None), ("GET", "/api/v1/cis/no-such", None),
                ("GET", "/api/v1/tokens", None), ("POST", "/api/v1/cis", {"class": "Nope"}),
                ("POST", "/api/v1/batches", {"source": "manual",
                                             "cis": [{"class": "Server", "fqdn": f"s{i}.example"}]}),
                ("POST", "/api/v1/batches", {"source": "scan",
                                             "cis": [{"class": "Host", "management_ip": "10.0.0.9"}]}),
                ("POST", "/api/v1/impact/incident", {"cis": ["no-such"]}),
                ("DELETE", "/api/v1/tokens/no-such", None),
            ):
                go(method, path, token, json=body)
        go("GET", "/api/v1/cis", None)
        go("GET", "/api/v1/cis", None, headers={"Authorization": f"Basic {tokens['admin']}"})
        r = go("POST", "/api/v1/tokens", tokens["admin"], json={"name": "made-over-http", "role": "viewer"})
        if r.status_code == 201:
            created_token = r.json()["token"]
            assert r.headers.get("cache-control") == "no-store"
            go("GET", "/api/v1/cis/no-such", created_token)
        go("POST", "/api/v1/tokens", tokens["admin"], json={"name": "made-over-http", "role": "viewer"})  # taken
    secrets = [*presented, *([created_token] if created_token else [])]
    secrets += [hash_token(world["key"], t) for t in secrets] + [world["key"].hex()]
    secrets += [t.token_hash for t in store.tokens()]
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    history = json.dumps([asdict(e) for e in store.events()], default=str)
    dump = json.dumps(list(store.dump()), default=str)
    assert errors and len(caplog.records) > 0
    assert any(e.actor == "operator-bot" for e in store.events()), "writes record the token's name as the actor"
    for secret in secrets:
        for where, text in (("a log line", logs), ("history", history), ("the store dump", dump)):
            assert secret not in text, f"a secret appears in {where}"
        for body in errors:
            assert secret not in body, "a secret appears in an error body"


def test_the_cli_never_prints_a_hash_and_the_key_file_is_0600(world: dict[str, Any]) -> None:
    store = world["store"]
    runner = CliRunner()
    res = runner.invoke(cli_app, ["--store", store.url, "tokens", "list", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)["items"]
    assert {t["name"] for t in listed} >= {"admin-bot", "gone"}
    for t in store.tokens():
        assert t.token_hash not in res.output
    assert all("token_hash" not in t for t in listed)
    res = runner.invoke(cli_app, ["--store", store.url, "tokens", "create", "--role", "viewer", "--expires", "1d",
                                  "cli-made"])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[0]
    assert token.startswith("cmdb_")
    rec = next(t for t in store.tokens() if t.name == "cli-made")
    assert rec.token_hash == hash_token(world["key"], token) and rec.expires_at is not None
    key_file = key_file_for(store.url)
    assert key_file.stat().st_mode & 0o077 == 0
    os.chmod(key_file, 0o644)
    try:
        res = runner.invoke(cli_app, ["--store", store.url, "tokens", "create", "--role", "viewer", "x"])
    finally:  # the file may be CMDB_TOKEN_KEY_FILE of a session's live server, which later tests use
        os.chmod(key_file, 0o600)
    assert res.exit_code != 0 and "readable by others" in str(res.exception or res.output)
