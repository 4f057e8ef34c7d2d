"""``cmdb prune`` as an operator runs it: a real process on a real SQLite file with old and young records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cmdb.store.base import DiscoveryRunRecord, iso
from cmdb.store.jobs import JobRecord
from cmdb.store.sqlite import SqliteStore


def cmdb(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CMDB__") and k != "CMDB_CONFIG"}
    full = {**clean, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "CMDB_STORE": f"sqlite:///{tmp_path / 'c.db'}",
            "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=full,
                          timeout=60, check=False)


def test_prune_dry_run_then_prune_per_kind(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = SqliteStore(tmp_path / "c.db")
    try:
        for name, days in (("old", 60), ("young", 1)):
            at = iso(now - timedelta(days=days))
            store.create_job(JobRecord(f"job-{name}", "import", "ops", at, "h:1:x", at))
            store.finish_job(f"job-{name}", "finished", at)
            store.save_discovery_run(DiscoveryRunRecord(f"run-{name}", "scan", at, at))
    finally:
        store.close()
    conf = tmp_path / "c.yaml"
    conf.write_text("retention: {discovery_runs: 30d}\n")

    dry = cmdb(tmp_path, "prune", "--dry-run", "--json", "--config", str(conf))
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout)
    assert doc["dry_run"] is True and doc["removed"] == 2
    kinds = {k["kind"]: k for k in doc["kinds"]}
    assert (kinds["jobs"]["keep"], kinds["jobs"]["removed"]) == ("30d", 1)
    assert (kinds["discovery_runs"]["keep"], kinds["discovery_runs"]["removed"]) == ("30d", 1)
    assert kinds["idempotency_keys"]["removed"] == 0

    text = cmdb(tmp_path, "prune", CMDB_CONFIG=str(conf), CMDB__RETENTION__JOBS="never")
    assert text.returncode == 0, text.stderr
    assert "removed 1 record(s)" in text.stdout and "for good" in text.stdout  # jobs kept: never
    again = json.loads(cmdb(tmp_path, "--json", "prune", "--config", str(conf)).stdout)
    assert {k["kind"]: k["removed"] for k in again["kinds"]}["jobs"] == 1 and again["removed"] == 1
    store = SqliteStore(tmp_path / "c.db")
    try:
        assert store.get_job("job-old") is None and store.get_job("job-young") is not None
        assert [r.run_id for r in store.discovery_runs()] == ["run-young"]
    finally:
        store.close()

    bad = cmdb(tmp_path, "prune", CMDB__RETENTION__IDEMPOTENCY_KEYS="1h")
    assert bad.returncode == 2 and "idempotency_keys" in bad.stderr and "Traceback" not in bad.stderr
