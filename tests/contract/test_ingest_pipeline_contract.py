"""``ingest_many`` (batch N+1 planned while N is written, on stores that can) ends exactly where a
loop of ``ingest`` ends, whether the batches are independent or each builds on the one before."""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError, UnknownClassError
from cmdb.ingest import ingest
from cmdb.ingest_pipeline import ingest_many
from cmdb.store.base import GraphStore, SearchQuery, iso
from cmdb.store.sqlite import SqliteStore

pipelined = functools.partial(ingest_many, pipeline=True)  # pipelined even for small batches


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[GraphStore]:
    """An embedded store loaded one ``ingest`` at a time, to compare with."""
    ref_store = SqliteStore(tmp_path / "reference.db")
    yield ref_store
    ref_store.close()


def host(n: int, **extra: Any) -> dict[str, Any]:
    return {"class": "Server", "hostname": f"h{n}", "fqdn": f"h{n}.example.com", **extra}


def ref(n: int) -> dict[str, Any]:
    return {"class": "Server", "fqdn": f"h{n}.example.com"}


# Each batch leans on the one before: a relationship to a CI it created, an update of a CI it
# created, a relationship it created seen again with an attribute, and an independent batch.
CHAIN: list[dict[str, Any]] = [
    {"source": "import", "cis": [host(1), host(2)]},
    {"source": "import", "cis": [host(3)],
     "relationships": [{"type": "DEPENDS_ON", "from": ref(3), "to": ref(1)}]},
    {"source": "ssh", "cis": [host(1, os="Ubuntu"), host(3, os="Debian")]},
    {"source": "import", "relationships": [{"type": "DEPENDS_ON", "from": ref(3), "to": ref(1),
                                             "attributes": {"port": 5432}}]},
    {"source": "import", "cis": [host(4), host(5)],
     "relationships": [{"type": "DEPENDS_ON", "from": ref(5), "to": ref(4)}]},
]


def state(store: GraphStore) -> tuple[Any, ...]:
    cis = sorted((c.name, c.cls, tuple(sorted(c.attrs.items(), key=str)))
                 for c in store.search(SearchQuery(limit=100)).items)
    names = {c.id: c.name for c in store.search(SearchQuery(limit=100)).items}
    rels = sorted((r.type, names[r.src], names[r.dst], tuple(sorted(r.attrs.items())))
                  for r in store.neighbors(set(names), None, "out"))
    events = sorted((e.kind, e.attr, str(e.old), str(e.new)) for e in store.events())
    return cis, rels, events, store.stats()["cis"], store.stats()["relationships"]


def test_a_chain_of_dependent_batches_ends_as_a_loop_of_ingest_does(store: GraphStore,
                                                                     reference: GraphStore) -> None:
    results = list(pipelined(store, (Batch.from_dict(d) for d in CHAIN)))
    for doc in CHAIN:
        ingest(reference, Batch.from_dict(doc))
    assert state(store) == state(reference)
    assert [r.created for r in results] == [2, 1, 0, 0, 2]
    assert [r.rels_created for r in results] == [0, 1, 0, 0, 1]
    assert [r.updated for r in results] == [0, 0, 2, 0, 0]
    assert [r.rels_updated for r in results] == [0, 0, 0, 1, 0]
    again = list(pipelined(store, (Batch.from_dict(d) for d in CHAIN[:2])))
    assert [r.events for r in again] == [0, 0]


def test_many_independent_batches_all_land(store: GraphStore) -> None:
    docs = [{"source": "import", "cis": [host(10 * b + i) for i in range(1, 6)],
             "relationships": [{"type": "DEPENDS_ON", "from": ref(10 * b + 1), "to": ref(10 * b + 2)}]}
            for b in range(1, 8)]
    results = list(pipelined(store, (Batch.from_dict(d) for d in docs)))
    assert [r.created for r in results] == [5] * 7 and [r.rels_created for r in results] == [1] * 7
    assert store.stats()["cis"] == 35 and store.stats()["relationships"] == 7
    assert sum(r.events for r in results) == store.stats()["events"] == 42


@pytest.mark.parametrize(("bad", "error"), [
    ({"cis": [{"class": "Toaster", "name": "t"}]}, UnknownClassError),  # fails while prepared
    ({"relationships": [{"type": "DEPENDS_ON", "from": ref(1), "to": ref(99)}]}, BadInputError),  # while planned
], ids=["prepare", "plan"])
def test_a_bad_batch_stops_the_stream_after_the_ones_before_it_landed_and_were_reported(
        store: GraphStore, bad: dict[str, Any], error: type[Exception]) -> None:
    docs = [{"source": "import", "cis": [host(1)]}, {"source": "import", "cis": [host(2)]},
            {"source": "import", **bad}, {"source": "import", "cis": [host(4)]}]
    written = []
    with pytest.raises(error, match="batch 3"):
        for result in pipelined(store, (Batch.from_dict(d, origin=f"batch {i}") for i, d in enumerate(docs, 1))):
            written.append(result.created)
    assert written == [1, 1]
    assert sorted(c.name or "" for c in store.search(SearchQuery()).items) == ["h1", "h2"]
    assert store.stats()["relationships"] == 0
    assert gc.get_freeze_count() == 0  # a stream that raised unfroze what it froze


def test_the_stream_freezes_objects_only_while_it_runs_and_leaves_a_callers_freeze(store: GraphStore) -> None:
    gc.collect()
    assert gc.get_freeze_count() == 0
    stream = pipelined(store, (Batch.from_dict(doc) for doc in CHAIN))
    next(stream)
    assert gc.get_freeze_count() > 0  # the parsed batches are not re-traced while the stream runs
    assert len(list(stream)) == len(CHAIN) - 1
    assert gc.get_freeze_count() == 0
    gc.freeze()  # an application that froze its own objects (say before forking workers) keeps them frozen
    try:
        frozen = gc.get_freeze_count()
        assert len(list(pipelined(store, (Batch.from_dict({"source": "import", "cis": [host(n)]})
                                          for n in (7, 8))))) == 2
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("stream", [pipelined, ingest_many], ids=["pipelined", "loop"])
def test_now_stamps_every_batch_of_the_stream(store: GraphStore, stream: Any) -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert len(list(stream(store, (Batch.from_dict(doc) for doc in CHAIN), now=when))) == len(CHAIN)
    stamp = iso(when)
    cis = store.search(SearchQuery(limit=100)).items
    assert len(cis) == 5 and {c.created_at for c in cis} == {stamp} and {c.updated_at for c in cis} == {stamp}
    assert {e.at for e in store.events()} == {stamp}
