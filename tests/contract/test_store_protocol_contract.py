"""The store protocol's methods that the other contract modules reach only through ``ingest`` or the
discovery run, called here by name on every store: ``write_batch`` with a plan, ``get_cis``,
``save_discovery_run``, and ``dump`` / ``restore`` (a store restored from its own dump dumps the same)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmdb.batch import Batch
from cmdb.errors import StoreError
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import DiscoveryRunRecord, GraphStore

DOC = {"source": "import:test", "scope": "lab", "complete": True, "cis": [
    {"ref": "a", "class": "Server", "hostname": "a1", "ip_addresses": ["10.0.0.1"], "serial_number": "SN-A1"},
    {"ref": "b", "class": "Application", "name": "billing"},
], "relationships": [{"type": "RUNS_ON", "from": "b", "to": "a"}]}


def test_write_batch_writes_what_the_plan_says(store: GraphStore) -> None:
    planner = Planner(default_schema(), ReconcileConfig(), Batch.from_dict(DOC), datetime.now(UTC))
    planner.prepare()
    changes = store.write_batch(planner.plan)
    assert len(changes.cis_new) == 2 and len(changes.rels_new) == 1
    ids = sorted(planner.result.ci_ids.values())
    got = store.get_cis([*ids, "ci-none"])
    assert sorted(got) == ids and {c.name for c in got.values()} == {"a1", "billing"}
    assert store.get_cis([]) == {}


def test_a_discovery_run_saved_twice_is_one_run(store: GraphStore) -> None:
    run = DiscoveryRunRecord(run_id="scan-1", method="scan", started_at="2026-01-01T00:00:00Z", actor="ops",
                             targets=["10.0.0.1"], options={"ports": [22]})
    store.save_discovery_run(run)
    run.outcomes.append({"target": "10.0.0.1", "outcome": "ok", "detail": "", "profile": None, "items": 3,
                         "changes": 3, "seconds": 0.1})
    run.ended_at = "2026-01-01T00:00:05Z"
    store.save_discovery_run(run)
    assert store.get_discovery_run("scan-1") == run
    assert [r.run_id for r in store.discovery_runs("scan")] == ["scan-1"]


def test_a_store_restored_from_its_dump_dumps_the_same(store: GraphStore) -> None:
    ingest(store, Batch.from_dict(DOC))
    before = list(store.dump())
    assert {kind for kind, _ in before} >= {"ci", "ci_key", "rel", "event", "run", "sighting"}
    with pytest.raises(StoreError, match="not empty"):
        store.restore(iter(before))
    store.clear()
    store.restore(iter(before))
    assert list(store.dump()) == before
    assert store.stats()["cis"] == 2
