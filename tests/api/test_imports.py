"""``POST /imports``: an uploaded file imported in the background with a mapping of the server's directory.

Each test gets its own SQLite store and app (counts start from nothing); the data are the tabular
importer's test files, so the answers can be held against what ``cmdb import`` does with them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import TokenFor, make_token_factory

V1 = "/api/v1"
DATA = Path(__file__).resolve().parents[1] / "data" / "tabular"
MAX_BODY = 256 * 1024


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, SqliteStore, TokenFor]]:
    maps = tmp_path / "mappings"
    maps.mkdir()
    shutil.copy(DATA / "servers.map.yaml", maps / "assets.yaml")
    store = SqliteStore(tmp_path / "imports.db")
    token_for = make_token_factory(store)
    settings = ApiSettings(impact_poll_seconds=0.2, mappings_dir=maps, max_body_bytes=MAX_BODY)
    with TestClient(create_app(store, settings), headers={"Authorization": f"Bearer {token_for('operator')}"}
                    ) as client:
        yield client, store, token_for
    store.close()


def upload(client: TestClient, name: str, mapping: str = "assets", content: bytes | None = None,
           headers: dict[str, str] | None = None, **form: Any) -> Any:
    body = content if content is not None else (DATA / name).read_bytes()
    data = {"mapping": mapping, **{k: str(v).lower() for k, v in form.items()}}
    return client.post(f"{V1}/imports", files={"file": (name, body, "text/csv")}, data=data, headers=headers or {})


def finished(client: TestClient, started: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    assert started.status_code == 202, started.text
    url = started.headers["location"]
    assert url == f"{V1}/imports/{started.json()['id']}"
    deadline = time.monotonic() + 120
    while True:
        doc: dict[str, Any] = client.get(url, headers=headers or {}).json()
        if doc["state"] != "running" or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def test_dry_run_then_import_as_the_token(env: tuple[TestClient, SqliteStore, TokenFor]) -> None:
    client, store, _ = env
    dry = finished(client, upload(client, "servers.csv", dry_run=True))
    assert dry["state"] == "finished" and dry["dry_run"] and dry["mapping"] == "assets", dry
    assert dry["result"]["counts"]["create"] == 6 and dry["result"]["rows"] == 4
    assert {i["action"] for i in dry["result"]["items"]} == {"create"}
    assert "web-01" in {i["name"] for i in dry["result"]["items"]}
    assert not store.find_by_name("web-01")  # nothing written

    done = finished(client, upload(client, "servers.csv"))
    assert done["state"] == "finished" and done["result"]["created"] == 6, done  # 4 servers, 2 owners
    ci_id = next(iter(store.find_by_name("web-01")))
    assert {e.actor for e in store.events([ci_id])} == {"t0-operator"}
    again = finished(client, upload(client, "servers.csv"))
    assert (again["result"]["created"], again["result"]["updated"], again["result"]["events"]) == (0, 0, 0)


def test_bad_rows_are_listed_and_nothing_is_written(env: tuple[TestClient, SqliteStore, TokenFor]) -> None:
    client, store, _ = env
    failed = finished(client, upload(client, "bad_rows.csv"))
    assert failed["state"] == "failed" and "nothing was written" in failed["error"]
    errors = failed["result"]["errors"]
    assert "bad_rows.csv:4: env: 'prod' is not one of production" in "\n".join(errors)
    assert not any("cmdb-upload" in e or "/tmp" in e for e in errors)  # the upload's own name, no server path
    assert not store.find_by_name("web-01")
    skipped = finished(client, upload(client, "bad_rows.csv", skip_invalid=True))
    assert skipped["state"] == "finished" and skipped["result"]["rejected"] == 4
    assert skipped["result"]["created"] >= 1 and len(skipped["result"]["errors"]) >= 4


def test_bad_requests_answer_at_once(env: tuple[TestClient, SqliteStore, TokenFor]) -> None:
    client, _, token_for = env
    unknown = upload(client, "servers.csv", mapping="nope")
    assert unknown.status_code == 404 and "assets" in unknown.json()["detail"]
    assert upload(client, "servers.csv", mapping="../assets").status_code == 422
    assert upload(client, "servers.exe", content=b"x").status_code == 422
    viewer = {"Authorization": f"Bearer {token_for('viewer')}"}
    assert upload(client, "servers.csv", headers=viewer).status_code == 403
    big = upload(client, "big.csv", content=b"hostname\n" + b"h\n" * MAX_BODY)
    assert big.status_code == 413 and big.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{V1}/imports/import-nothing").status_code == 404


def test_a_partition_limited_operator_imports_into_its_partition_only(
        env: tuple[TestClient, SqliteStore, TokenFor]) -> None:
    client, store, token_for = env
    p1 = {"Authorization": f"Bearer {token_for('operator', partitions=['p1'])}"}
    p2 = {"Authorization": f"Bearer {token_for('operator', partitions=['p2'])}"}
    done = finished(client, upload(client, "servers.csv", headers=p1), p1)
    assert done["state"] == "finished", done
    web = store.get_ci(next(iter(store.find_by_name("web-01"))))
    assert web is not None and web.attrs.get("partition") == "p1"
    events = len(store.events())
    started = upload(client, "servers.csv", headers=p2)
    assert client.get(started.headers["location"], headers=p1).status_code == 404  # another token's import
    refused = finished(client, started, p2)
    assert refused["state"] == "failed" and refused["result"]["errors"], refused
    assert len(store.events()) == events  # no batch of it was written

