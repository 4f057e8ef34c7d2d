"""The app follows its store's schema extensions (``api.schema_watch``): impact answers kept for the old
schema are not served after a replaced extension changes what a relationship type means to impact."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.schema_store import add_extension, store_schema
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import make_token_factory

V1 = "/api/v1"
EXT = "classes:\n  PowerFeed: {parent: Device}\nrelationships:\n  POWERED_BY: {impact: %s}\n"
DOC = {"source": "import:t", "cis": [{"ref": "f", "class": "PowerFeed", "serial_number": "PF-1"},
                                     {"ref": "s", "class": "Service", "name": "lights", "service_type": "business",
                                      "tier": 1}],
       "relationships": [{"type": "POWERED_BY", "from": "s", "to": "f"}]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "watch.db")
    try:
        yield s
    finally:
        s.close()


def _services(client: TestClient) -> list[str]:
    r = client.post(f"{V1}/impact/incident", json={"cis": ["PF-1"]})  # from the answer cache when it may
    assert r.status_code == 200, r.text
    return [s["name"] for s in r.json()["services"]]


def test_a_replaced_extension_retires_cached_impact_answers(store: SqliteStore, tmp_path: Path) -> None:
    ext = tmp_path / "power.yaml"
    ext.write_text(EXT % "none", encoding="utf-8")
    add_extension(store, ext)
    ingest(store, Batch.from_dict(DOC), schema=store_schema(store))
    token = make_token_factory(store)("viewer")
    settings = ApiSettings(impact_poll_seconds=0.2, schema_poll_seconds=0.2,
                           allowed_networks=[ipaddress.ip_network("127.0.0.0/8")])
    with TestClient(create_app(store, settings), headers={"Authorization": f"Bearer {token}"}) as client:
        assert _services(client) == []  # power does not carry impact yet; the answer is now cached
        before = client.app.state.api.schema  # type: ignore[attr-defined]
        ext.write_text(EXT % "to_source", encoding="utf-8")
        add_extension(store, ext)  # as `cmdb schema add` from another process would
        deadline = time.monotonic() + 60  # a poll is 0.2 s: a quiet machine needs one, a busy one maybe many
        while _services(client) != ["lights"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _services(client) == ["lights"]
        after = client.app.state.api.schema  # type: ignore[attr-defined]
        assert after is not before and after.rel_type("POWERED_BY").impact == "to_source"


def test_a_schema_given_to_the_app_stays(store: SqliteStore, tmp_path: Path) -> None:
    pinned = store_schema(store)
    settings = ApiSettings(schema_poll_seconds=0.1, warm_impact=False)
    with TestClient(create_app(store, settings, schema=pinned)) as client:
        ext = tmp_path / "power.yaml"
        ext.write_text(EXT % "none", encoding="utf-8")
        add_extension(store, ext)
        time.sleep(0.4)
        assert client.app.state.api.schema is pinned  # type: ignore[attr-defined]
