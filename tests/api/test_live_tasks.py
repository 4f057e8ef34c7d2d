"""The task routes on the real server (``cmdb serve`` on loopback, httpx), on SQLite and on Neo4j.

The task is raised in the server's store from this process (as the expiry cycle would, from the
scheduler's process); the server lists it, acknowledges it as the token and counts it in /metrics.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cmdb.store import open_store
from cmdb.store.base import GraphStore
from cmdb.store.tasks import new_task
from tests.api.conftest import LiveServer

V1 = "/api/v1"


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def live(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, GraphStore]]:
    server: LiveServer = request.getfixturevalue(f"live_{request.param}")
    store: GraphStore
    if request.param == "neo4j":
        from cmdb.store.neo4j import Neo4jStore

        ep = request.getfixturevalue("neo4j_server")
        store = Neo4jStore(ep.uri, ep.user, ep.password)
    else:
        store = open_store(server.store_url)
    try:
        yield server, store
    finally:
        store.close()


def test_tasks_over_the_real_server(live: tuple[LiveServer, GraphStore]) -> None:
    server, store = live
    kind = f"live_{uuid.uuid4().hex[:8]}"
    ci_id = next(iter(store.find_by_name("sw-core-fra-1")))
    now = datetime.now(UTC)
    task = store.raise_task(new_task(kind, ci_id, "2031-01-01", now=now, actor="test", priority="P3",
                                     due="2030-12-01T00:00:00.000000Z"))[0]
    with server.client() as c:
        listed = c.get(f"{V1}/tasks", params={"kind": kind}).json()["items"]
        assert [t["id"] for t in listed] == [task.id]
        assert f'cmdb_tasks_open{{kind="{kind}",state="open"}} 1.0' in c.get("/metrics").text
        acked = c.post(f"{V1}/tasks/{task.id}/ack", json={"note": "live"})
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        assert c.post(f"{V1}/tasks/{task.id}/resolve").json()["state"] == "resolved"
        assert c.post(f"{V1}/tasks/{task.id}/cancel").status_code == 409
        assert c.get(f"{V1}/tasks", params={"kind": kind}).json()["items"] == []
    stored = store.get_task(task.id)
    assert stored is not None and stored.state == "resolved"
    assert [(t.actor, t.to_state) for t in stored.transitions[1:]] == [("t0-admin", "acknowledged"),
                                                                      ("t0-admin", "resolved")]
