"""``cmdb conflicts [list] [--state open|closed|resolved|all]`` as an operator runs it, and ``cmdb export`` /
``restore`` carrying every state: real processes on a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.merge import resolve_conflict
from cmdb.store.sqlite import SqliteStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def cmdb(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{db}", "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def snmp(complete: bool, *hosts: dict[str, Any]) -> Batch:
    return Batch.from_dict({"source": "snmp", "scope": "10.0.0.0/24", "complete": complete,
                            "cis": [{"class": "Server", **h} for h in hosts]})


def test_list_by_state_and_export_restore(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    store = SqliteStore(db)
    try:
        ingest(store, snmp(True, {"serial_number": "S1", "management_ip": "10.0.0.5"}), now=T0)
        ingest(store, Batch.from_dict({"source": "import", "cis": [{"class": "Server", "serial_number": "S2"}]}),
               now=T0 + timedelta(hours=1))
        (closing,) = ingest(store, snmp(False, {"serial_number": "S2", "management_ip": "10.0.0.5"}),
                            now=T0 + timedelta(hours=2)).conflicts
        closer = ingest(store, snmp(True, {"serial_number": "S1", "management_ip": "10.0.0.6"},
                                    {"serial_number": "S2", "management_ip": "10.0.0.5"}), now=T0 + timedelta(hours=3))
        (settled,) = ingest(store, Batch.from_dict({"source": "import", "cis": [
            {"class": "Server", "serial_number": "SN-D", "os": "Debian 12"},
            {"class": "Server", "serial_number": "SN-D", "os": "Debian 11"}]}), now=T0 + timedelta(hours=4)).conflicts
        resolve_conflict(store, settled.id, "keep_separate", actor="bob", now=T0 + timedelta(hours=5))
        (still,) = ingest(store, Batch.from_dict({"source": "import", "cis": [
            {"class": "Server", "serial_number": "SN-E", "os": "Debian 12"},
            {"class": "Server", "serial_number": "SN-E", "os": "Debian 11"}]}), now=T0 + timedelta(hours=6)).conflicts
    finally:
        store.close()

    def ids(*args: str) -> list[tuple[str, str]]:
        proc = cmdb(db, *args, "--json")
        assert proc.returncode == 0, proc.stderr
        return [(i["id"], i["state"]) for i in json.loads(proc.stdout)["items"]]

    assert ids("conflicts") == ids("conflicts", "list") == [(still.id, "open")]
    assert ids("conflicts", "list", "--state", "closed") == [(closing.id, "closed")]
    assert ids("conflicts", "--state", "resolved") == [(settled.id, "resolved")]
    assert ids("conflicts", "list", "--state", "all") == [(closing.id, "closed"), (settled.id, "resolved"),
                                                          (still.id, "open")]
    text = cmdb(db, "conflicts", "list", "--state", "all").stdout
    assert closer.run_id in text and "keep_separate" in text and "bob" in text  # how each one ended
    bad = cmdb(db, "conflicts", "list", "--state", "gone")
    assert bad.returncode == 2 and "unknown conflict state 'gone'" in bad.stderr and "Traceback" not in bad.stderr
    stats = json.loads(cmdb(db, "stats", "--json").stdout)
    assert stats["conflicts"] == 1

    dump = tmp_path / "dump.jsonl"
    exported = cmdb(db, "export", str(dump), "--json")
    assert exported.returncode == 0, exported.stderr
    records = json.loads(exported.stdout)["records"]
    assert records["conflict"] == 3 and records["conflict_closure"] == 1 and records["conflict_resolution"] == 1
    copy = tmp_path / "copy.db"
    restored = cmdb(copy, "restore", str(dump), "--json")
    assert restored.returncode == 0, restored.stderr
    again = cmdb(copy, "conflicts", "list", "--state", "all", "--json")
    assert [(i["id"], i["state"], i["closed_run"]) for i in json.loads(again.stdout)["items"]] == [
        (closing.id, "closed", closer.run_id), (settled.id, "resolved", None), (still.id, "open", None)]
