"""Store capabilities the HTTP API needs: the write counter and idempotency keys, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.ingest_once import KeyReusedError, fingerprint, ingest_once
from cmdb.store.base import DiscoveryRunRecord, GraphStore, SearchQuery, iso

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DOC = {"source": "import:test", "cis": [{"ref": "a", "class": "Server", "fqdn": "api-01.example.com", "cpu_count": 4},
                                        {"ref": "b", "class": "Server", "fqdn": "api-02.example.com"}],
       "relationships": [{"type": "DEPENDS_ON", "from": "a", "to": "b"}]}


def test_write_counter_moves_with_every_write_and_only_then(store: GraphStore) -> None:
    first = store.write_counter()
    assert store.write_counter() == first  # reading moves nothing
    store.search(SearchQuery())
    assert store.write_counter() == first
    ingest(store, Batch.from_dict(DOC), now=T0)
    second = store.write_counter()
    assert second != first
    ingest(store, Batch.from_dict(DOC), now=T0 + timedelta(minutes=1))  # unchanged data, still a write
    assert store.write_counter() != second
    third = store.write_counter()
    store.clear()
    assert store.write_counter() != third


def test_write_counter_sees_another_connections_writes(store: GraphStore) -> None:
    from cmdb.store import open_store

    other = open_store(store.url) if store.url.startswith("sqlite") else None
    if other is None:
        pytest.skip("one Neo4j server: the counter lives in the database, checked above")
    try:
        before = store.write_counter()
        ingest(other, Batch.from_dict(DOC), now=T0)
        assert store.write_counter() != before
    finally:
        other.close()


def test_a_retried_key_writes_nothing_and_answers_the_first_summary(store: GraphStore) -> None:
    fp = fingerprint(DOC)
    res, rec = ingest_once(store, Batch.from_dict(DOC), "k-1", fp, now=T0)
    assert res is not None and res.created == 2 and res.rels_created == 1
    assert rec.run_id == res.run_id and rec.stats["created"] == 2 and rec.fingerprint == fp
    events, runs = store.stats()["events"], store.stats()["runs"]
    again, rec2 = ingest_once(store, Batch.from_dict(DOC), "k-1", fp, now=T0 + timedelta(minutes=5))
    assert again is None
    assert rec2.summary() == rec.summary()
    assert store.stats()["events"] == events and store.stats()["runs"] == runs  # not even a run ledger entry
    assert store.idempotency_record("k-1") == rec2
    assert store.idempotency_record("unknown") is None


def test_a_key_reused_for_another_body_is_refused(store: GraphStore) -> None:
    ingest_once(store, Batch.from_dict(DOC), "k-2", fingerprint(DOC), now=T0)
    other = {**DOC, "cis": DOC["cis"][:1], "relationships": []}
    with pytest.raises(KeyReusedError, match="k-2"):
        ingest_once(store, Batch.from_dict(other), "k-2", fingerprint(other), now=T0)


def test_the_key_is_written_with_its_batch_or_not_at_all(store: GraphStore) -> None:
    def failing(reader: object) -> object:
        raise RuntimeError("the plan failed")

    with pytest.raises(RuntimeError):
        store.write_batch_once("k-3", "fp", failing, iso(T0))  # type: ignore[arg-type]
    assert store.idempotency_record("k-3") is None
    assert store.stats()["cis"] == 0


def test_old_keys_are_forgotten_when_pruned(store: GraphStore) -> None:
    # Remembered until retention prunes them (cmdb.retention: 7 days by default), not when other keys come.
    ingest_once(store, Batch.from_dict(DOC), "old", fingerprint(DOC), now=T0)
    ingest_once(store, Batch.from_dict(DOC), "new", fingerprint(DOC), now=T0 + timedelta(hours=25))
    assert store.idempotency_record("old") is not None
    assert store.prune_records("idempotency_keys", iso(T0 + timedelta(hours=1))) == 1
    assert store.idempotency_record("old") is None
    assert store.idempotency_record("new") is not None


def test_writes_outside_the_graph_leave_the_counter_alone(store: GraphStore) -> None:
    # A token's last_used is written once a minute per token while the API serves: counting it would
    # rebuild the API's impact index (seconds on a large estate) for nothing.
    from cmdb.tokens import create_token, token_store

    ingest(store, Batch.from_dict(DOC), now=T0)
    create_token(store, b"k" * 32, "counter-probe", "viewer")
    before = store.write_counter()
    token_store(store).touch_token("counter-probe", iso(T0))
    store.save_discovery_run(DiscoveryRunRecord("r1", "scan", iso(T0)))
    assert store.write_counter() == before


def test_keyset_pages_walk_every_match_once_in_order(store: GraphStore) -> None:
    from cmdb.store.base import sort_key

    doc = {"source": "import:test", "cis": [
        {"ref": f"s{i}", "class": "Server" if i % 3 else "VirtualMachine", "fqdn": f"k{i % 4}-{i:02d}.example.com",
         "hostname": f"K{i % 4}" if i % 5 else None} for i in range(23)]}
    for ci in doc["cis"]:
        if ci["hostname"] is None:
            del ci["hostname"]
    ingest(store, Batch.from_dict(doc), now=T0)
    everything = store.search(SearchQuery(classes=["Server", "VirtualMachine"], limit=100)).items
    walked, after = [], None
    while True:
        page = store.search(SearchQuery(classes=["Server", "VirtualMachine"], limit=4, after=after))
        assert page.total == len(everything) == 23
        walked += page.items
        if len(page.items) < 4:
            break
        after = sort_key(page.items[-1])
    assert [c.id for c in walked] == [c.id for c in everything]
    assert [sort_key(c) for c in walked] == sorted(sort_key(c) for c in walked)
