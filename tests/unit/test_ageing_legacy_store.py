"""A SQLite store written before relationship provenance existed opens, and its relationships'
attributes are taken as their strongest source's until sources say otherwise."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def linked(source: str, attrs: dict[str, Any]) -> Batch:
    return Batch.from_dict({
        "source": source,
        "cis": [{"ref": "a", "class": "Server", "serial_number": "S1"},
                {"ref": "b", "class": "Switch", "serial_number": "SW1"}],
        "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": attrs}]})


def test_a_store_without_relationship_provenance_opens_and_reconciles(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    ingest(store, linked("snmp", {"port": "Gi0/1", "vlan": 10}), now=T0)
    store.close()
    with sqlite3.connect(path) as db:  # as the store was before this version: no rel_prov table
        db.execute("DROP TABLE rel_prov")
    store = SqliteStore(path)
    try:
        [rel] = store.relationships(type="CONNECTED_TO")
        assert rel.attrs == {"port": "Gi0/1", "vlan": 10}
        ingest(store, linked("scan", {"port": "eth0"}), now=T0 + timedelta(hours=1))
        [rel] = store.relationships(type="CONNECTED_TO")
        assert rel.attrs == {"port": "Gi0/1", "vlan": 10}  # the stored values were snmp's, which outranks scan
        ingest(store, linked("snmp", {"port": None}), now=T0 + timedelta(hours=2))
        [rel] = store.relationships(type="CONNECTED_TO")
        assert rel.attrs == {"port": "eth0", "vlan": 10}
    finally:
        store.close()
