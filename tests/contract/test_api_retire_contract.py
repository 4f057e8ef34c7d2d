"""``DELETE /api/v1/cis/{id}`` on every store: a ``manual`` retire batch through ``ingest`` (one door in).

The route's write is an ingest run like any other: a run-ledger entry of source ``manual`` with the
retire stats, ``ci.status`` / ``rel.status`` history events carrying the token's name, and an
``If-Match`` checked on the state read inside the write transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.state import ApiSettings
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore
from tests.api.conftest import make_token_factory

V1 = "/api/v1"
DOC = {"source": "import:t", "cis": [{"ref": "a", "class": "Server", "fqdn": "del-a.example.com"},
                                     {"ref": "b", "class": "Server", "fqdn": "del-b.example.com"},
                                     {"ref": "c", "class": "Server", "fqdn": "del-c.example.com"}],
       "relationships": [{"type": "DEPENDS_ON", "from": "a", "to": "b"},
                         {"type": "DEPENDS_ON", "from": "b", "to": "c"}]}


@pytest.fixture
def client(store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CMDB_TOKEN_KEY_FILE", str(tmp_path / "token-key"))
    ingest(store, Batch.from_dict(DOC))
    token = make_token_factory(store)("operator")
    settings = ApiSettings(impact_poll_seconds=0.2, allowed_networks=[ipaddress.ip_network("127.0.0.0/8")],
                           warm_impact=False)
    with TestClient(create_app(store, settings), headers={"Authorization": f"Bearer {token}"},
                    raise_server_exceptions=False) as c:
        yield c


def test_delete_is_a_manual_ingest_run_with_the_actor(client: TestClient, store: GraphStore) -> None:
    b = client.get(f"{V1}/cis/del-b.example.com")
    ci_id, etag = b.json()["id"], b.headers["etag"]
    runs_before = len(store.runs(source="manual"))

    gone = client.delete(f"{V1}/cis/{ci_id}", headers={"If-Match": etag})
    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "retired" and gone.json()["id"] == ci_id
    assert gone.headers["etag"] != etag

    runs = store.runs(source="manual")
    assert len(runs) == runs_before + 1
    run = runs[0]
    assert run.actor == "t0-operator"
    assert (run.stats["retired"], run.stats["rels_updated"], run.stats["created"]) == (1, 2, 0)
    mine = [e for e in store.events([ci_id]) if e.run_id == run.run_id]
    assert sorted(e.kind for e in mine) == ["ci.status", "rel.status", "rel.status"]
    assert {(e.source, e.actor) for e in mine} == {("manual", "t0-operator")}
    rels = store.relationships(ci_id, include_retired=True)
    assert {r.status for r in rels} == {"retired"} and len(rels) == 2
    # counted as an ingested batch of the manual source, as every write through the one door is
    assert 'cmdb_ingest_batches_total{source="manual"} 1.0' in client.get("/metrics").text


def test_a_stale_etag_writes_nothing(client: TestClient, store: GraphStore) -> None:
    b = client.get(f"{V1}/cis/del-b.example.com").json()
    runs, events = len(store.runs()), len(store.events([b["id"]]))
    stale = client.delete(f"{V1}/cis/{b['id']}", headers={"If-Match": 'W/"old"'})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    assert len(store.runs()) == runs and len(store.events([b["id"]])) == events
    assert store.get_ci(b["id"]).status == "active"  # type: ignore[union-attr]
    missing = client.delete(f"{V1}/cis/no-such-ci.example.com")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
