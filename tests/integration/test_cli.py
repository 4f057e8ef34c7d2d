"""The ``cmdb`` command as a user runs it: a real process on a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ESTATE = """\
source: import:csv
scope: estate.csv
complete: true
cis:
  - {ref: svc, class: Service, name: Checkout, service_type: business, tier: 1}
  - {ref: app, class: Application, name: orders-api, version: "2.1"}
  - {ref: db, class: Database, name: orders-db, engine: postgres, role: primary}
  - {ref: h1, class: Server, hostname: db-01, serial_number: SRV-1}
relationships:
  - {type: DEPENDS_ON, from: svc, to: app}
  - {type: DEPENDS_ON, from: app, to: db}
  - {type: RUNS_ON, from: db, to: h1}
"""


def cmdb(tmp_path: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


@pytest.fixture()
def loaded(tmp_path: Path) -> Path:
    (tmp_path / "estate.yaml").write_text(ESTATE)
    cmdb(tmp_path, "load", str(tmp_path / "estate.yaml"))
    return tmp_path


def test_load_show_search_history_stats(loaded: Path) -> None:
    shown = as_json(cmdb(loaded, "ci", "show", "SRV-1", "--json"))  # found by its serial number
    assert shown["name"] == "db-01" and shown["class"] == "Server"
    assert shown["provenance"]["serial_number"]["import:csv"]["value"] == "SRV-1"
    assert [r["type"] for r in shown["relationships"]] == ["RUNS_ON"]
    hosts = as_json(cmdb(loaded, "ci", "list", "--class", "Host", "--json"))
    assert hosts["total"] == 1
    found = as_json(cmdb(loaded, "ci", "search", "orders", "--json"))
    assert sorted(c["name"] for c in found["items"]) == ["orders-api", "orders-db"]
    (loaded / "ssh.yaml").write_text("source: ssh\ncis:\n  - {class: Server, serial_number: SRV-1, os: RHEL 9}\n")
    cmdb(loaded, "load", str(loaded / "ssh.yaml"))
    near = as_json(cmdb(loaded, "history", "Checkout", "--since", "1h", "--depth", "3", "--json"))
    changes = [(e["kind"], e["attr"], e["new"]) for e in near["items"] if e["kind"] == "ci.attr"]
    assert changes == [("ci.attr", "os", "RHEL 9")]
    assert as_json(cmdb(loaded, "history", "Checkout", "--json"))["items"][0]["kind"] == "ci.created"
    rels = as_json(cmdb(loaded, "rel", "list", "--ci", "orders-api", "--direction", "out", "--json"))
    assert [r["type"] for r in rels["items"]] == ["DEPENDS_ON"]
    stats = as_json(cmdb(loaded, "stats", "--json"))
    assert stats["cis"] == 4 and stats["relationships"] == 3 and stats["runs"] == 2
    runs = as_json(cmdb(loaded, "runs", "--json"))
    assert {r["source"] for r in runs["items"]} == {"import:csv", "ssh"}
    assert as_json(cmdb(loaded, "conflicts", "--json"))["items"] == []
    assert "Server" in cmdb(loaded, "stats").stdout


def test_as_of_shows_the_past(loaded: Path) -> None:
    first = as_json(cmdb(loaded, "ci", "show", "db-01", "--json"))
    created = first["created_at"]
    (loaded / "ssh.yaml").write_text("source: ssh\ncis:\n  - {class: Server, serial_number: SRV-1, os: RHEL 9}\n")
    cmdb(loaded, "load", str(loaded / "ssh.yaml"))
    then = as_json(cmdb(loaded, "ci", "show", "db-01", "--as-of", created, "--json"))
    assert "os" not in then["attrs"]
    later = as_json(cmdb(loaded, "ci", "show", "db-01", "--as-of", "2100-01-01T00:00", "--json"))
    assert later["attrs"]["os"] == "RHEL 9"
    early = cmdb(loaded, "ci", "show", "db-01", "--as-of", "2000-01-01T00:00", ok=False)
    assert early.returncode == 3 and "did not exist" in early.stderr


def test_errors_are_one_clear_line_and_write_nothing(loaded: Path) -> None:
    before = as_json(cmdb(loaded, "stats", "--json"))
    (loaded / "bad.yaml").write_text(
        "source: ssh\ncis:\n  - {class: Server, serial_number: SRV-9, os: RHEL}\n"
        "  - {class: Server, serial_number: SRV-1, cpu_count: lots}\n"
    )
    proc = cmdb(loaded, "load", str(loaded / "bad.yaml"), ok=False)
    assert proc.returncode == 2
    assert "cis[1]" in proc.stderr and "cpu_count" in proc.stderr and "Traceback" not in proc.stderr
    assert as_json(cmdb(loaded, "stats", "--json")) == before
    (loaded / "broken.yaml").write_text("source: ssh\ncis: [\n")
    proc = cmdb(loaded, "load", str(loaded / "broken.yaml"), ok=False)
    assert proc.returncode == 2 and "broken.yaml:" in proc.stderr and "not valid YAML" in proc.stderr
    proc = cmdb(loaded, "ci", "show", "no-such-thing", ok=False)
    assert proc.returncode == 3 and "no CI matches 'no-such-thing'" in proc.stderr
    proc = cmdb(loaded, "--store", "mysql://x", "stats", ok=False)
    assert proc.returncode == 2 and "unknown store URL" in proc.stderr


def test_export_restore_and_migrate_between_sqlite_files(loaded: Path) -> None:
    dump = loaded / "dump.jsonl"
    cmdb(loaded, "export", str(dump))
    assert dump.read_text().splitlines()[0].startswith('{"format": "cmdb-dump"')
    env_store = f"sqlite:///{loaded / 'restored.db'}"
    restored = subprocess.run([sys.executable, "-m", "product.cli", "--store", env_store, "restore", str(dump),
                               "--json"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(restored.stdout)["records"]["ci"] == 4
    again = subprocess.run([sys.executable, "-m", "product.cli", "--store", env_store, "restore", str(dump)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2 and "not empty" in again.stderr
    moved = as_json(cmdb(loaded, "migrate", "--from", f"sqlite:///{loaded / 'cli.db'}",
                         "--to", f"sqlite:///{loaded / 'moved.db'}", "--json"))
    assert moved["verified"] and moved["records"]["event"] == 7
    shown = subprocess.run([sys.executable, "-m", "product.cli", "--store", f"sqlite:///{loaded / 'moved.db'}",
                            "ci", "show", "SRV-1", "--json"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(shown.stdout)["provenance"]["serial_number"]["import:csv"]["value"] == "SRV-1"
