"""Identity conflicts keep their history on every store: open, closed by ageing (when, which run, whose, why),
resolved (merged or kept separate, when, by whom); listed by state, counted open only, reopened when recorded
again, carried by dump and restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.health.config import HealthConfig
from cmdb.health.report import build_report
from cmdb.ingest import IngestResult, ingest
from cmdb.merge import resolve_conflict
from cmdb.migrate import compare_stores, migrate
from cmdb.model import default_schema
from cmdb.store.base import GraphStore, iso
from cmdb.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
A, B = "10.0.0.5", "10.0.0.6"
KEY_A = f"device:management_ip={A}"


def load(store: GraphStore, doc: dict[str, Any], at: int = 0) -> IngestResult:
    return ingest(store, Batch.from_dict(doc), now=T0 + timedelta(hours=at))


def snmp(*hosts: dict[str, Any], complete: bool = True) -> dict[str, Any]:
    return {"source": "snmp", "scope": "10.0.0.0/24", "complete": complete, "actor": "netops",
            "cis": [{"class": "Server", **h} for h in hosts]}


def tied(store: GraphStore) -> str:
    """S1 owns A; a partial look says S2 has A: one conflict tying the two CIs through A."""
    load(store, snmp({"serial_number": "S1", "management_ip": A}))
    load(store, {"source": "import", "cis": [{"class": "Server", "serial_number": "S2", "hostname": "h2"}]}, at=1)
    (conflict,) = load(store, snmp({"serial_number": "S2", "management_ip": A}, complete=False), at=2).conflicts
    return conflict.id


def states(store: GraphStore) -> list[tuple[str, str]]:
    return [(c.id, c.state) for c in store.conflicts("all")]


def test_closed_by_ageing_is_kept_with_when_which_run_whose_and_why_and_reopens(store: GraphStore) -> None:
    cid = tied(store)
    assert [c.id for c in store.conflicts()] == [cid] and store.conflicts("closed") == []
    # The complete run places A on S2 and B on S1: the keys no longer tie two CIs.
    closing = load(store, snmp({"serial_number": "S1", "management_ip": B},
                               {"serial_number": "S2", "management_ip": A}), at=3)
    assert store.conflicts() == [] and store.conflicts("resolved") == [] and store.stats()["conflicts"] == 0
    (c,) = store.conflicts("closed")
    assert (c.id, c.state, c.closed_at, c.closed_run, c.closed_by) == (
        cid, "closed", iso(T0 + timedelta(hours=3)), closing.run_id, "netops")
    assert KEY_A in (c.closed_reason or "") and "snmp" in (c.closed_reason or "")
    assert c.resolution is None and c.keys and len(c.ci_ids) == 2  # the record itself is whole
    assert store.conflict(cid) == c and states(store) == [(cid, "closed")]
    schema = default_schema()
    report = build_report(store, schema, HealthConfig.load(schema), now=T0 + timedelta(hours=3))
    assert [f for f in report.findings if f.rule == "open-conflict"] == []  # the health report counts open ones
    with pytest.raises(BadInputError, match="closed"):
        resolve_conflict(store, cid, "keep_separate", actor="ann")
    # A moves back to S1; the same partial look ties the same CIs through the same keys again: open again.
    load(store, snmp({"serial_number": "S1", "management_ip": A}, {"serial_number": "S2"}), at=4)
    again = load(store, snmp({"serial_number": "S2", "management_ip": A}, complete=False), at=5)
    assert [x.id for x in again.conflicts] == [cid]
    (reopened,) = store.conflicts()
    assert (reopened.id, reopened.state, reopened.closed_at, reopened.at) == (cid, "open", None,
                                                                              iso(T0 + timedelta(hours=5)))
    assert store.conflicts("closed") == [] and store.stats()["conflicts"] == 1


def test_resolved_ones_are_listed_as_resolved_and_the_health_report_counts_open_ones(store: GraphStore) -> None:
    cid = tied(store)
    schema = default_schema()
    report = build_report(store, schema, HealthConfig.load(schema), now=T0 + timedelta(hours=3))
    assert [f.detail["conflict"] for f in report.findings if f.rule == "open-conflict"] == [cid]
    resolve_conflict(store, cid, "keep_separate", actor="bob", now=T0 + timedelta(hours=3))
    assert store.conflicts() == [] and store.conflicts("closed") == []
    (c,) = store.conflicts("resolved")
    assert (c.state, c.resolution, c.resolved_by, c.resolved_at) == (
        "resolved", "keep_separate", "bob", iso(T0 + timedelta(hours=3)))
    report = build_report(store, schema, HealthConfig.load(schema), now=T0 + timedelta(hours=4))
    assert [f for f in report.findings if f.rule == "open-conflict"] == []
    # Ageing closes open conflicts only: a resolved one stays resolved when its keys retire.
    load(store, snmp({"serial_number": "S1", "management_ip": B}, {"serial_number": "S2", "management_ip": A}), at=5)
    assert states(store) == [(cid, "resolved")]
    with pytest.raises(BadInputError, match="unknown conflict state"):
        store.conflicts("gone")


def test_every_state_survives_dump_restore_and_migrate(store: GraphStore, tmp_path: Any) -> None:
    closed_id = tied(store)
    load(store, snmp({"serial_number": "S1", "management_ip": B}, {"serial_number": "S2", "management_ip": A}), at=3)
    load(store, {"source": "import", "cis": [  # two items of one batch disagreeing: an open conflict
        {"class": "Server", "serial_number": "SN-D", "os": "Debian 12"},
        {"class": "Server", "serial_number": "SN-D", "os": "Debian 11"}]}, at=4)
    load(store, {"source": "import", "cis": [
        {"class": "Server", "serial_number": "SN-E", "os": "Debian 12"},
        {"class": "Server", "serial_number": "SN-E", "os": "Debian 11"}]}, at=5)
    open_ids = [c.id for c in store.conflicts()]
    assert len(open_ids) == 2
    resolve_conflict(store, open_ids[1], "keep_separate", actor="carol", now=T0 + timedelta(hours=6))
    before = store.conflicts("all")
    assert sorted(c.state for c in before) == ["closed", "open", "resolved"]
    dumped = list(store.dump())
    assert {kind for kind, _ in dumped} >= {"conflict", "conflict_resolution", "conflict_closure"}
    copy = SqliteStore(tmp_path / "copy.db")
    try:
        migrate(store, copy)
        assert compare_stores(store, copy) == []
        assert copy.conflicts("all") == before
    finally:
        copy.close()
    store.clear()
    assert store.conflicts("all") == []
    store.restore(iter(dumped))
    assert store.conflicts("all") == before and store.conflict(closed_id) == before[0]
    assert store.stats()["conflicts"] == 1
