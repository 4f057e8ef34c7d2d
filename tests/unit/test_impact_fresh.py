"""The shortcuts of a fresh incident answer give the answers of the long way, for every CI of the sample estate.

* stakeholders from the warm index's memory (``MemoryIndex.load_stakeholders``) = from the store;
* stakeholders cut to the first few (``first_stakeholders``) = the full list cut, with roles, worst
  tier and reason counts of the full list;
* the worst affected CIs (``report_dict(max_affected=)``) = the full sorted list cut;
* recent changes (``GraphStore.recent_events``) = the newest of all events near the affected CIs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.cli import SAMPLE_ESTATE
from cmdb.history import dependencies
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.store.base import SearchQuery, iso
from cmdb.store.sqlite import SqliteStore
from impact.engine import blast_radius
from impact.incident import RECENT_DEPTH, analyse_incident, report_dict
from impact.index import MemoryIndex
from impact.records import record_change, record_incident, records_on
from impact.source import StoreSource
from impact.stakeholders import Stakeholder, first_stakeholders, gather_stakeholders
from impact.states import State


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path_factory.mktemp("fresh") / "s.db")
    ingest(store, Batch.from_file(SAMPLE_ESTATE))
    yield store
    store.close()


def shape(people: list[Stakeholder]) -> list[tuple[Any, ...]]:
    return [(p.id, p.name, p.kind, p.contact, p.roles, p.worst_tier,
             [(r.role, r.ci_id, r.ci_name, r.state, r.tier) for r in p.reasons]) for p in people]


def test_memory_stakeholders_and_cuts_match_the_long_way(sample: SqliteStore) -> None:
    schema = default_schema()
    index = MemoryIndex.from_store(sample, schema, stakeholders=True)
    assert index.stakeholders and index.people
    bare = MemoryIndex.from_store(sample, schema)
    assert bare.stakeholders is None  # as the CLI's SPOF scan builds it: the store answers
    store_source = StoreSource(sample, schema)
    checked = 0
    for ci in sample.search(SearchQuery(limit=1000)).items:
        for mode in (State.DOWN, State.DEGRADED):
            fast = gather_stakeholders(sample, blast_radius(index, {ci.id: mode}))
            assert shape(fast) == shape(gather_stakeholders(sample, blast_radius(bare, {ci.id: mode})))
            assert shape(fast) == shape(gather_stakeholders(sample, blast_radius(store_source, {ci.id: mode})))
            cut, total = first_stakeholders(sample, blast_radius(index, {ci.id: mode}), 2, 1)
            assert total == len(fast)
            assert [(p.id, p.roles, p.worst_tier, p.reasons_total) for p in cut] == \
                [(p.id, p.roles, p.worst_tier, len(p.reasons)) for p in fast[:2]]
            assert [p.reasons for p in cut] == [p.reasons[:1] for p in fast[:2]]
            checked += bool(fast)
    assert checked > 50


def test_cut_answers_are_the_full_answers_cut(sample: SqliteStore) -> None:
    schema = default_schema()
    index = MemoryIndex.from_store(sample, schema, stakeholders=True)
    for name in ("sw-core-fra-1", "db-fra-01"):
        cause = sample.find_by_name(name)[0]
        full = report_dict(analyse_incident(sample, [cause], schema=schema, source=index))
        rep = analyse_incident(sample, [cause], schema=schema, source=index, max_stakeholders=3, max_reasons=2)
        cut = report_dict(rep, max_affected=4)
        assert cut["affected"] == full["affected"][:4] and len(full["affected"]) > 4
        assert [s["id"] for s in cut["stakeholders"]] == [s["id"] for s in full["stakeholders"][:3]]
        assert rep.stakeholders_total == len(full["stakeholders"])
        assert cut["recent_changes"] == full["recent_changes"]
        near = set(rep.radius.affected) | set(dependencies(sample, schema, cause, RECENT_DEPTH))
        newest = [e for e in sample.events() if e.ci_id in near or e.peer_id in near][-50:][::-1]
        assert [(e["at"], e["ci_id"], e["attr"]) for e in cut["recent_changes"]] == \
            [(e.at, e.ci_id, e.attr) for e in newest] and len(newest) == 50



def test_records_from_the_warm_index_match_the_store(sample: SqliteStore) -> None:
    """Incidents and changes on record, read from the index's AFFECTS edges or from the store: the same."""
    schema = default_schema()
    core, db = sample.find_by_name("sw-core-fra-1")[0], sample.find_by_name("db-fra-01")[0]
    now = datetime.now(UTC)
    record_incident(sample, "INC-FRESH-1", [core], iso(now - timedelta(hours=1)))
    record_change(sample, "CHG-FRESH-1", [db], iso(now - timedelta(hours=2)), iso(now + timedelta(hours=2)),
                  state="in_progress")
    index = MemoryIndex.from_store(sample, schema, stakeholders=True)
    assert index.affects
    near = set(blast_radius(index, {core: State.DOWN}).affected)
    via_index = records_on(sample, near, affects=index.affects)
    assert {r.key for r in via_index} >= {"INC-FRESH-1", "CHG-FRESH-1"}
    assert via_index == records_on(sample, near)
    warm = analyse_incident(sample, [core], schema=schema, source=index)
    cold = analyse_incident(sample, [core], schema=schema, source=StoreSource(sample, schema))
    assert (warm.related_incidents, warm.change_records, warm.in_maintenance) == \
        (cold.related_incidents, cold.change_records, cold.in_maintenance)
    assert warm.in_maintenance  # the change in progress covers CIs the switch takes down
