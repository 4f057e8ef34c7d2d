"""The numpy engine (``impact.vector``) gives exactly the Python engine's results on a MemoryIndex.

Compared on the bundled sample estate (every CI failing alone in each mode, the hand-worked
scenarios, every redundancy group losing one, several and all of its members) and on a 10k-CI
synthetic estate (random single and multi-CI failures in mixed modes, whole and partial groups,
the CIs with the largest fan-out): affected CIs and states, touched groups, affected services
with tier, state and explanation path, the path to every affected CI, and service tiers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from bench.synthetic import synthetic_batches
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from impact.engine import blast_radius
from impact.index import MemoryIndex
from impact.states import State
from impact.vector import VectorBlastRadius
from tests.unit.test_impact_sample import SAMPLE

MODES = (State.DOWN, State.DEGRADED, State.AT_RISK)


def assert_same(index: MemoryIndex, failures: dict[str, State], all_paths: bool = True) -> VectorBlastRadius:
    py = blast_radius(index, failures, vector=False)
    vec = blast_radius(index, failures)
    assert isinstance(vec, VectorBlastRadius) and not isinstance(py, VectorBlastRadius)
    assert vec.states == py.states, failures
    assert vec.affected == py.affected
    assert vec.count() == len(py.states)
    assert vec.groups == py.groups
    assert vec.services() == py.services(), failures
    if all_paths:
        for c in [*py.states, *failures]:
            assert vec.path_to(c) == py.path_to(c), (failures, c)
        assert vec.service_tiers() == py.service_tiers()
    return vec


def group_cases(index: MemoryIndex, rng: random.Random, limit: int | None = None) -> Iterator[dict[str, State]]:
    """Per group: one member down, all but one down, all down, and a mixed-mode subset."""
    groups = sorted(index.members)
    if limit is not None:
        groups = rng.sample(groups, min(limit, len(groups)))
    for g in groups:
        members = sorted(set(index.members[g]))
        yield {members[0]: State.DOWN}
        yield {m: State.DOWN for m in members[:-1]}
        yield {m: State.DOWN for m in members}
        yield {m: rng.choice(MODES) for m in rng.sample(members, rng.randint(1, len(members)))}


# -- the sample estate ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoryIndex]:
    store = SqliteStore(tmp_path_factory.mktemp("vector") / "sample.db")
    ingest(store, Batch.from_file(SAMPLE))
    yield MemoryIndex.from_store(store)
    store.close()


def test_sample_every_ci_alone(sample_index: MemoryIndex) -> None:
    ids = sorted(set(sample_index.fan) | set(sample_index.members))
    assert len(ids) > 50
    for c in ids:
        for mode in MODES:
            assert_same(sample_index, {c: mode})


def test_sample_scenarios(sample_index: MemoryIndex) -> None:
    store = sample_index.store
    assert store is not None

    def one(name: str) -> str:
        found = store.find_by_name(name)
        assert len(found) == 1, name
        return found[0]

    for names in (["sw-core-fra-1"], ["pay-fra-01"], ["pay-fra-01", "pay-fra-02"], ["shop.example.com"],
                  ["dc-ams"], ["sw-core-fra-1", "sw-core-fra-2"]):
        vec = assert_same(sample_index, {one(n): State.DOWN for n in names})
        assert vec.services()
    # a single pool member: the pool and what depends on it are degraded, not down
    vec = assert_same(sample_index, {one("pay-fra-01"): State.DOWN})
    assert State.DOWN not in {s.state for s in vec.services()}


def test_sample_groups(sample_index: MemoryIndex) -> None:
    rng = random.Random(3)
    assert sample_index.members
    for failures in group_cases(sample_index, rng):
        assert_same(sample_index, failures)


def test_sample_random_multi_failures(sample_index: MemoryIndex) -> None:
    rng = random.Random(5)
    ids = sorted(set(sample_index.fan) | set(sample_index.members))
    for _ in range(300):
        assert_same(sample_index, {c: rng.choice(MODES) for c in rng.sample(ids, rng.randint(2, 6))})


def test_unknown_and_ok_causes(sample_index: MemoryIndex) -> None:
    c = sorted(sample_index.fan)[0]
    assert_same(sample_index, {"no-such-ci": State.DOWN, c: State.DOWN})
    assert_same(sample_index, {"no-such-ci": State.OK, c: State.OK})
    assert_same(sample_index, {})


def test_max_hops_and_opt_out_use_python(sample_index: MemoryIndex) -> None:
    c = sorted(sample_index.fan)[0]
    assert not isinstance(blast_radius(sample_index, {c: State.DOWN}, max_hops=1), VectorBlastRadius)
    assert not isinstance(blast_radius(sample_index, {c: State.DOWN}, vector=False), VectorBlastRadius)


def test_vector_rebuilt_after_add_edge() -> None:
    idx = MemoryIndex.from_edges([("DEPENDS_ON", "a", "b")])
    assert set(blast_radius(idx, {"b": State.DOWN}).states) == {"a", "b"}
    idx.add_edge("DEPENDS_ON", "z", "a")
    assert set(blast_radius(idx, {"b": State.DOWN}).states) == {"a", "b", "z"}


def test_cycles_caps_and_quorum_by_hand() -> None:
    """A cycle, a degraded-capped edge, a 2-of-3 quorum group and a tie broken by name."""
    from impact.source import NodeInfo

    edges = [("DEPENDS_ON", "a", "b"), ("DEPENDS_ON", "b", "a"), ("LICENSED_BY", "c", "a"),
             ("MEMBER_OF", "m1", "g"), ("MEMBER_OF", "m2", "g"), ("MEMBER_OF", "m3", "g"),
             ("DEPENDS_ON", "s", "g"), ("DEPENDS_ON", "s", "c"),
             ("DEPENDS_ON", "x", "p"), ("DEPENDS_ON", "x", "q"), ("DEPENDS_ON", "p", "r"), ("DEPENDS_ON", "q", "r")]
    nodes = [NodeInfo("g", "grp", "Cluster", attrs={"quorum": 2}), NodeInfo("s", "svc", "Service", 1),
             NodeInfo("x", "svc-x", "Service", 2), NodeInfo("p", "zz", "Application"),
             NodeInfo("q", "aa", "Application")]
    idx = MemoryIndex.from_edges(edges, nodes)
    for failures in ({"b": State.DOWN}, {"m1": State.DOWN}, {"m1": State.DOWN, "m2": State.DOWN},
                     {"m1": State.DOWN, "b": State.DEGRADED}, {"r": State.DOWN}, {"m3": State.AT_RISK}):
        assert_same(idx, failures)
    vec = blast_radius(idx, {"m1": State.DOWN, "m2": State.DOWN})
    assert vec.states["g"] == State.DOWN and vec.states["s"] == State.DOWN
    assert blast_radius(idx, {"b": State.DOWN}).states["s"] == State.DEGRADED  # LICENSED_BY caps
    assert blast_radius(idx, {"r": State.DOWN}).path_to("x") == ["r", "q", "x"]  # "aa" sorts before "zz"


# -- a synthetic estate ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoryIndex]:
    store = SqliteStore(tmp_path_factory.mktemp("vector") / "synthetic.db")
    for doc in synthetic_batches(10_000, batch_size=5_000):
        ingest(store, Batch.from_dict(doc))
    yield MemoryIndex.from_store(store)
    store.close()


def test_synthetic_random_failures(synthetic_index: MemoryIndex) -> None:
    rng = random.Random(7)
    ids = sorted(set(synthetic_index.fan) | set(synthetic_index.members))
    big = 0
    for i in range(400):
        k = 1 if i < 200 else rng.randint(2, 8)
        vec = assert_same(synthetic_index, {c: rng.choice(MODES) for c in rng.sample(ids, k)}, all_paths=i % 4 == 0)
        big = max(big, vec.count())
    assert big > 50


def test_synthetic_largest_fan_out(synthetic_index: MemoryIndex) -> None:
    fan = synthetic_index.fan
    top = sorted(fan, key=lambda c: (-len(fan[c][1]), c))[:15]
    sizes = [assert_same(synthetic_index, {c: State.DOWN}).count() for c in top]
    assert max(sizes) > 500
    assert_same(synthetic_index, {c: State.DOWN for c in top[:3]})
    assert_same(synthetic_index, {c: State.DEGRADED for c in top[3:6]})


def test_synthetic_groups(synthetic_index: MemoryIndex) -> None:
    rng = random.Random(9)
    for failures in group_cases(synthetic_index, rng, limit=60):
        assert_same(synthetic_index, failures)


def random_index(rng: random.Random) -> tuple[MemoryIndex, list[str]]:
    """A random graph with cycles, every impact direction, caps and quorum groups, whose names tie on purpose;
    and its CI ids."""
    from impact.source import NodeInfo

    types = ["DEPENDS_ON", "RUNS_ON", "LICENSED_BY", "HAS_INTERFACE", "CONNECTED_TO", "MEMBER_OF"]
    n = rng.randint(20, 120)
    cis = [f"c{i:03d}" for i in range(n)]
    edges = [(rng.choice(types), rng.choice(cis), rng.choice(cis)) for _ in range(rng.randint(n, 4 * n))]
    nodes = [NodeInfo(c, f"n{rng.randint(0, 5)}", rng.choice(["Service", "Application", "Cluster"]),
                      rng.randint(1, 4),
                      {"quorum": rng.randint(0, 3), "cluster_type": rng.choice(["pool", "cluster"])})
             for c in cis if rng.random() < 0.6]
    return MemoryIndex.from_edges(edges, nodes), cis


def test_random_cyclic_graphs_from_edges() -> None:
    """Random graphs with cycles, every impact direction, caps and quorum groups; names tie on purpose."""
    rng = random.Random(13)
    for _ in range(30):
        idx, cis = random_index(rng)
        for _ in range(10):
            assert_same(idx, {c: rng.choice(MODES) for c in rng.sample(cis, rng.randint(1, 4))})
