"""A batch planned ahead (``plan_ahead``) is applied only if the store changed by exactly the write
it was planned alongside; a write by anyone else in between makes the store plan it again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.ingest import _Planner, ingest
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import ChangeSet
from cmdb.store.neo4j import Neo4jStore, PlannedAhead

pytestmark = pytest.mark.neo4j


@pytest.fixture
def neo(neo4j_server: Any) -> Iterator[Neo4jStore]:
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    store.clear()
    try:
        yield store
    finally:
        store.close()


def server(fqdn: str, **attrs: Any) -> dict[str, Any]:
    return {"class": "Server", "fqdn": fqdn, **attrs}


def planner(doc: dict[str, Any]) -> _Planner:
    p = _Planner(default_schema(), ReconcileConfig(), Batch.from_dict(doc), datetime.now(UTC))
    p.prepare()
    return p


@pytest.mark.parametrize(("counter", "after", "writes", "valid"), [
    (4, 5, 6, True),   # planned while write 5 was in flight, then this write is the 6th
    (5, 5, 6, True),   # planned after write 5 had committed
    (4, 5, 7, False),  # someone wrote after write 5
    (3, 5, 6, False),  # someone wrote between the plan's reads and write 5
    (6, 5, 7, True),   # reads began after a later commit, which they saw whole
])
def test_still_true(counter: int, after: int, writes: int, valid: bool) -> None:
    assert PlannedAhead(ChangeSet(run=None), counter, {}, {}).still_true(writes, after) is valid  # type: ignore[arg-type]


def test_a_foreign_write_in_between_makes_the_store_plan_again(neo: Neo4jStore) -> None:
    ingest(neo, Batch.from_dict({"source": "import", "cis": [server("a.example.com", os="Linux")]}))
    update = planner({"source": "ssh", "cis": [server("a.example.com", os="Ubuntu")]})
    ahead = neo.plan_ahead(update.plan)
    assert [c.attrs["os"] for c in ahead.changes.cis_changed] == ["Ubuntu"]
    # The write the plan was made alongside, then somebody else's.
    _, after = neo.write_counted(planner({"source": "import", "cis": [server("b.example.com")]}).plan)
    ingest(neo, Batch.from_dict({"source": "manual", "cis": [server("a.example.com", os="Windows")]}))

    cs, _ = neo.write_counted(update.plan, ahead, after)
    assert cs is not ahead.changes  # planned again, seeing the manual value
    ci = neo.get_ci(neo.find_by_key("device:fqdn=a.example.com") or "")
    assert ci is not None and ci.attrs["os"] == "Windows"  # manual outranks ssh
    assert set(ci.provenance["os"]) == {"import", "ssh", "manual"}


def test_a_proposal_still_true_is_applied_as_planned(neo: Neo4jStore) -> None:
    ingest(neo, Batch.from_dict({"source": "import", "cis": [server("a.example.com", os="Linux")]}))
    update = planner({"source": "ssh", "cis": [server("a.example.com", os="Ubuntu")]})
    ahead = neo.plan_ahead(update.plan)
    _, after = neo.write_counted(planner({"source": "import", "cis": [server("b.example.com")]}).plan)
    cs, _ = neo.write_counted(update.plan, ahead, after)
    assert cs is ahead.changes
    ci = neo.get_ci(neo.find_by_key("device:fqdn=a.example.com") or "")
    assert ci is not None and ci.attrs["os"] == "Ubuntu"
    assert len(neo.events([ci.id])) == 2  # created, then the os change
