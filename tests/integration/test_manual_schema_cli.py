"""``cmdb schema ...``, ``cmdb ci set/retire`` and ``cmdb rel retire`` as a user runs them (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.test_cli import as_json, cmdb

EXT = """classes:
  StorageArray: {parent: Device, attributes: {raw_tb: {type: float, min: 0}}}
relationships:
  REPLICATES_TO: {impact: to_source, from: [StorageArray], to: [StorageArray]}
"""
ARRAYS = """source: manual
cis:
  - {ref: a, class: StorageArray, serial_number: ARR-1, hostname: arr1, raw_tb: 10}
  - {ref: b, class: StorageArray, serial_number: ARR-2, hostname: arr2}
relationships:
  - {type: REPLICATES_TO, from: a, to: b}
"""
ESTATE = """source: manual
cis:
  - {ref: shop, class: Service, name: shop, service_type: business, tier: 1}
  - {ref: db, class: Server, serial_number: DB-1, hostname: db1, cpu_count: 4}
  - {ref: web, class: Server, serial_number: WEB-1, hostname: web1}
relationships:
  - {type: DEPENDS_ON, from: shop, to: db}
  - {type: DEPENDS_ON, from: shop, to: web}
"""


def test_schema_lives_in_the_store(tmp_path: Path) -> None:
    (tmp_path / "storage.yaml").write_text(EXT)
    (tmp_path / "arrays.yaml").write_text(ARRAYS)
    refused = cmdb(tmp_path, "load", str(tmp_path / "arrays.yaml"), ok=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "unknown CI class 'StorageArray'" in refused.stderr and "cmdb schema add FILE" in refused.stderr
    added = as_json(cmdb(tmp_path, "schema", "add", str(tmp_path / "storage.yaml"), "--json"))
    assert added["name"] == "storage" and added["classes"] == ["StorageArray"] and not added["replaced"]
    cmdb(tmp_path, "load", str(tmp_path / "arrays.yaml"))
    listed = as_json(cmdb(tmp_path, "schema", "list", "--json"))
    assert [i["name"] for i in listed["items"]] == ["storage"] and listed["total"] == 1
    shown = as_json(cmdb(tmp_path, "schema", "show", "StorageArray", "--json"))
    assert shown["parent"] == "Device" and shown["attributes"]["raw_tb"] == {"type": "float", "min": 0}
    assert shown["relationships"] == ["HAS_INTERFACE", "REPLICATES_TO"]  # the types that name it (or a parent)
    assert as_json(cmdb(tmp_path, "schema", "show", "REPLICATES_TO", "--json"))["impact"] == "to_source"
    assert "StorageArray" in as_json(cmdb(tmp_path, "schema", "show", "--json"))["classes"]
    missing = cmdb(tmp_path, "schema", "show", "Tape", ok=False)
    assert missing.returncode in (2, 3) and "neither a class nor a relationship type" in missing.stderr
    in_use = cmdb(tmp_path, "schema", "remove", "storage", ok=False)
    assert in_use.returncode == 2 and "still use" in in_use.stderr
    # Another process without any environment variable sees the same schema: impact follows it.
    arr = as_json(cmdb(tmp_path, "ci", "show", "ARR-1", "--json"))
    assert arr["attrs"]["raw_tb"] == 10.0 and arr["class"] == "StorageArray"


def test_cmdb_schema_is_a_deprecated_fallback_only(tmp_path: Path) -> None:
    (tmp_path / "storage.yaml").write_text(EXT)
    (tmp_path / "arrays.yaml").write_text(ARRAYS)
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{tmp_path / 'cli.db'}",
           "CMDB_SCHEMA": str(tmp_path / "storage.yaml")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                              timeout=60, check=False)

    old_way = run("load", str(tmp_path / "arrays.yaml"))  # a store without extensions: the variable still works
    assert old_way.returncode == 0, old_way.stderr
    assert "CMDB_SCHEMA is deprecated" in old_way.stderr and "cmdb schema add" in old_way.stderr
    del env["CMDB_SCHEMA"]
    listed = json.loads(run("schema", "list", "--json").stdout)  # what the data needs and the schema lacks
    assert listed["undefined_in_use"] == {"classes": ["StorageArray"], "relationships": ["REPLICATES_TO"]}
    assert run("schema", "add", str(tmp_path / "storage.yaml")).returncode == 0
    env["CMDB_SCHEMA"] = str(tmp_path / "missing.yaml")  # once the store holds extensions it is ignored
    shown = run("ci", "show", "ARR-2", "--json")
    assert shown.returncode == 0 and "CMDB_SCHEMA is ignored" in shown.stderr
    assert json.loads(shown.stdout)["class"] == "StorageArray"


def test_manual_corrections(tmp_path: Path) -> None:
    (tmp_path / "estate.yaml").write_text(ESTATE)
    cmdb(tmp_path, "load", str(tmp_path / "estate.yaml"))
    done = as_json(cmdb(tmp_path, "ci", "set", "db1", "cpu_count=8", "environment=production", "--json"))
    assert done["attrs"]["cpu_count"] == 8 and done["updated"] == 1  # typed by the schema: an int
    bad = cmdb(tmp_path, "ci", "set", "db1", "cpu_count=eight", "colour=red", ok=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "expected an integer, got 'eight'" in bad.stderr and "'colour' is not an attribute" in bad.stderr
    unknown = cmdb(tmp_path, "ci", "set", "nosuchbox", "cpu_count=1", ok=False)
    assert unknown.returncode in (2, 3) and "no CI matches 'nosuchbox'" in unknown.stderr

    gone = as_json(cmdb(tmp_path, "rel", "retire", "shop", "DEPENDS_ON", "web1", "--json"))
    assert gone["rels_updated"] == 1 and gone["type"] == "DEPENDS_ON"
    rels = as_json(cmdb(tmp_path, "rel", "list", "--json"))
    rels = rels["items"] if isinstance(rels, dict) else rels
    assert [r["status"] for r in rels] == ["active"]  # shop -> db1 only; retired ones are hidden
    no_rel = cmdb(tmp_path, "rel", "retire", "shop", "RUNS_ON", "web1", ok=False)
    assert no_rel.returncode in (2, 3) and "no RUNS_ON relationship" in no_rel.stderr

    retired = as_json(cmdb(tmp_path, "ci", "retire", "db1", "--json"))
    assert retired["retired"] == 1 and retired["rels_updated"] == 1
    assert as_json(cmdb(tmp_path, "ci", "show", "db1", "--json"))["status"] == "retired"
    history = as_json(cmdb(tmp_path, "history", "shop", "--json"))
    history = history["items"] if isinstance(history, dict) else history
    changes = [(e["kind"], e["source"], e["new"]) for e in history if e["kind"] == "rel.status"]
    assert changes == [("rel.status", "manual", "retired"), ("rel.status", "manual", "retired")]
    runs = as_json(cmdb(tmp_path, "runs", "--json"))
    runs = runs["items"] if isinstance(runs, dict) else runs
    assert sum(1 for r in runs if r.get("source") == "manual") >= 4  # each correction is a batch in the ledger
