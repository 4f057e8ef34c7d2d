"""The numpy answer shortcuts (``impact.vector_labels``, ``impact.vector_stakeholders``, ``worst_affected``) give
exactly the general code's answers: stakeholders ranked and cut, their reasons ordered, the worst affected CIs and
their names, on random graphs whose names, roles and tiers tie on purpose, and on a 10k-CI synthetic estate.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import pytest

from bench.synthetic import synthetic_batches
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore
from cmdb.store.sqlite import SqliteStore
from impact.engine import blast_radius
from impact.index import MemoryIndex
from impact.source import NodeInfo
from impact.stakeholders import Stakeholder, first_stakeholders
from impact.states import State
from impact.vector import VectorBlastRadius
from tests.unit.test_impact_vector import random_index

MODES = (State.DOWN, State.DEGRADED, State.AT_RISK)
NO_STORE = cast(GraphStore, None)  # the index holds the stakeholder edges: the store is never asked


def shape(people: list[Stakeholder]) -> list[tuple[Any, ...]]:
    return [(p.id, p.name, p.kind, p.contact, p.roles, p.worst_tier, p.reasons_total,
             [(r.role, r.ci_id, r.ci_name, r.state, r.tier) for r in p.reasons]) for p in people]


def assert_same_answers(idx: MemoryIndex, failures: dict[str, State], store: GraphStore = NO_STORE) -> int:
    vec = blast_radius(idx, failures)
    py = blast_radius(idx, failures, vector=False)
    assert isinstance(vec, VectorBlastRadius) and not isinstance(py, VectorBlastRadius)
    for limit, reasons in ((None, None), (3, 2), (1, 1), (0, None)):
        fast = first_stakeholders(store, vec, limit, reasons)
        slow = first_stakeholders(store, py, limit, reasons)
        assert shape(fast[0]) == shape(slow[0]), (failures, limit, reasons)
        assert fast[1] == slow[1]
    for limit in (None, 5, 1):
        assert vec.worst_affected(limit) == py.worst_affected(limit), failures
    wanted = [*vec.affected, "not-a-ci"]
    assert vec.labels(wanted) == py.labels(wanted)
    assert (vec.fast_stakeholders(None, None) is None) == bool(vec.outside)  # the arrays answered
    return len(first_stakeholders(store, vec)[0])


def test_random_graphs_with_tied_names_roles_and_tiers() -> None:
    rng = random.Random(21)
    roles = ["owner", "support", "service_owner", "subscriber", "watcher", "auditor"]  # the last two: unranked
    seen = 0
    for _ in range(40):
        idx, cis = random_index(rng)
        idx.rules = replace(idx.rules, stakeholders={**idx.rules.stakeholders, "WATCHED_BY": ("watcher", "target"),
                                                     "AUDITED_BY": ("auditor", "target")})
        people = [f"p{i:02d}" for i in range(rng.randint(1, 12))]
        idx.people = {p: NodeInfo(p, rng.choice(["Ann", "ann", "Bob", p]), rng.choice(["Person", "Team"]), None,
                                  {"email": f"{p}@example.org"} if rng.random() < 0.5 else {}) for p in people}
        idx.stakeholders = {}
        for _ in range(rng.randint(0, 3 * len(cis))):
            what = rng.choice(cis)
            idx.stakeholders.setdefault(what, []).append((rng.choice(people), rng.choice(roles), what))
        for _ in range(8):
            seen += assert_same_answers(idx, {c: rng.choice(MODES) for c in rng.sample(cis, rng.randint(1, 4))})
    assert seen > 200


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, MemoryIndex]]:
    store = SqliteStore(tmp_path_factory.mktemp("answers") / "synthetic.db")
    for doc in synthetic_batches(10_000, batch_size=5_000):
        ingest(store, Batch.from_dict(doc))
    yield store, MemoryIndex.from_store(store, stakeholders=True)
    store.close()


def test_synthetic_estate(synthetic: tuple[SqliteStore, MemoryIndex]) -> None:
    store, idx = synthetic
    fan = idx.fan
    top = sorted(fan, key=lambda c: (-len(fan[c][1]), c))[:5]
    rng = random.Random(5)
    cases = [{c: State.DOWN} for c in top] + [{c: rng.choice(MODES) for c in rng.sample(sorted(fan), 3)}
                                              for _ in range(20)]
    assert max(assert_same_answers(idx, f, store) for f in cases) > 20
