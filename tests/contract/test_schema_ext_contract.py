"""Schema extensions kept in the store: the capability, the schema built from it, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.batch import Batch
from cmdb.errors import BadInputError, NotFoundError, SchemaError, UnknownClassError
from cmdb.ingest import ingest
from cmdb.schema_store import add_extension, remove_extension, store_schema
from cmdb.store.base import GraphStore
from cmdb.store.schema_ext import SchemaExtension
from cmdb.store.sqlite import SqliteStore

STORAGE = """classes:
  StorageArray: {parent: Device, attributes: {raw_tb: {type: float, min: 0}}}
  Server: {attributes: {rack_unit: {type: int}}}
relationships:
  REPLICATES_TO: {impact: to_source, from: [StorageArray], to: [StorageArray]}
"""
ARRAYS = {"source": "manual", "cis": [
    {"ref": "a", "class": "StorageArray", "serial_number": "ARR-1", "raw_tb": "12.5"},
    {"ref": "b", "class": "StorageArray", "serial_number": "ARR-2"}],
    "relationships": [{"type": "REPLICATES_TO", "from": "a", "to": "b"}]}


def test_put_list_replace_remove(store: GraphStore) -> None:
    assert store.schema_extensions() == []
    first = store.put_schema_extension(SchemaExtension("storage", STORAGE, "2026-12-01T00:00:00.000000Z", "ann"))
    second = store.put_schema_extension(SchemaExtension("racks", "classes: {}\n", "2026-12-01T00:01:00.000000Z"))
    assert (first.seq, second.seq) == (1, 2)
    again = store.put_schema_extension(SchemaExtension("storage", STORAGE + "\n", "2026-12-02T00:00:00.000000Z", "bob"))
    assert again.seq == 1 and again.added_by == "bob"  # replaced in place: the merge order stays
    assert [(e.name, e.seq, e.text) for e in store.schema_extensions()] == [
        ("storage", 1, STORAGE + "\n"), ("racks", 2, "classes: {}\n")]
    assert store.remove_schema_extension("racks") is True
    assert store.remove_schema_extension("racks") is False
    assert [e.name for e in store.schema_extensions()] == ["storage"]


def test_data_of_an_extension_class_is_refused_until_the_store_holds_it(store: GraphStore, tmp_path: Path) -> None:
    with pytest.raises(UnknownClassError, match="cmdb schema add FILE"):
        ingest(store, Batch.from_dict(ARRAYS))
    assert store.stats()["cis"] == 0
    ext = tmp_path / "storage.yaml"
    ext.write_text(STORAGE)
    stored, replaced = add_extension(store, ext, actor="ann")
    assert (stored.name, replaced) == ("storage", False)
    schema = store_schema(store)  # no environment variable involved
    assert schema.relationships["REPLICATES_TO"].impact == "to_source"
    res = ingest(store, Batch.from_dict(ARRAYS))
    assert (res.created, res.rels_created) == (2, 1)
    arr = store.get_ci(res.ci_ids["a"])
    assert arr is not None and arr.attrs["raw_tb"] == 12.5  # typed by the stored extension


def test_a_bad_extension_is_refused_and_nothing_is_stored(store: GraphStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes:\n  Tape: {parent: NoSuchParent}\n")
    with pytest.raises(SchemaError, match="unknown parent 'NoSuchParent'"):
        add_extension(store, bad)
    clash = tmp_path / "clash.yaml"
    clash.write_text("classes:\n  Server: {attributes: {hostname: {type: int}}}\n")
    with pytest.raises(SchemaError, match=r"class Server already has attribute\(s\) hostname"):
        add_extension(store, clash)
    typo = tmp_path / "typo.yaml"
    typo.write_text("clases: {}\n")
    with pytest.raises(SchemaError, match="must be a mapping with 'classes'"):
        add_extension(store, typo)
    assert store.schema_extensions() == []


def test_an_extension_in_use_cannot_be_dropped(store: GraphStore, tmp_path: Path) -> None:
    ext = tmp_path / "storage.yaml"
    ext.write_text(STORAGE)
    add_extension(store, ext)
    ingest(store, Batch.from_dict(ARRAYS))
    with pytest.raises(BadInputError, match="StorageArray, which CIs in this store still use"):
        remove_extension(store, "storage")
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text("classes:\n  Server: {attributes: {rack_unit: {type: int}}}\n")
    with pytest.raises(BadInputError, match="would drop class"):
        add_extension(store, smaller, name="storage")
    with pytest.raises(NotFoundError):
        remove_extension(store, "nope")
    assert [e.name for e in store.schema_extensions()] == ["storage"]


def test_dump_and_restore_carry_the_extensions(store: GraphStore, tmp_path: Path) -> None:
    ext = tmp_path / "storage.yaml"
    ext.write_text(STORAGE)
    add_extension(store, ext, actor="ann")
    ingest(store, Batch.from_dict(ARRAYS))
    records = list(store.dump())
    assert [r["name"] for k, r in records if k == "schema_extension"] == ["storage"]
    other = SqliteStore(tmp_path / "copy.db")
    try:
        other.restore(records)
        assert [(e.name, e.text, e.added_by) for e in other.schema_extensions()] == [("storage", STORAGE, "ann")]
        assert "StorageArray" in store_schema(other).classes
        assert other.stats()["cis"] == 2
    finally:
        other.close()
    store.clear()
    store.restore(records)
    assert [e.name for e in store.schema_extensions()] == ["storage"]
    assert store.stats()["relationships"] == 1
