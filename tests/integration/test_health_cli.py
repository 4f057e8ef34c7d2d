"""``cmdb health`` as a user runs it: a real process on a real SQLite file, text, JSON, trend and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ESTATE = """\
source: manual
cis:
  - {ref: svc, class: Service, name: Checkout, service_type: business, tier: 1}
  - {ref: app, class: Application, name: orders-api, version: "2.1", environment: production}
  - {ref: lonely, class: Application, name: lonely-app, version: "1", environment: test}
  - {ref: h1, class: Server, hostname: db-01, serial_number: SRV-1, vendor: Dell, model: R650, os: Linux}
relationships:
  - {type: DEPENDS_ON, from: svc, to: app}
  - {type: RUNS_ON, from: app, to: h1}
"""


def cmdb(tmp_path: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "200"}
    env.pop("CMDB_HEALTH_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == code, proc.stderr
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def test_health_text_json_class_and_trend(tmp_path: Path) -> None:
    (tmp_path / "estate.yaml").write_text(ESTATE)
    cmdb(tmp_path, "load", str(tmp_path / "estate.yaml"))
    text = cmdb(tmp_path, "health").stdout
    assert "CMDB health at" in text and "1 Application CI(s) have no relationship at all" in text
    assert "lonely-app (Application" in text and "do:  link each" in text
    assert "1 Service CI(s) have no owner" in text and "lack the recommended attribute criticality" in text
    doc = as_json(cmdb(tmp_path, "health", "--json"))
    assert doc["schema_version"] == 1 and doc["next"] is None and doc["total"] == len(doc["items"])
    rules = sorted(i["rule"] for i in doc["items"])
    assert rules == ["missing-recommended", "missing-recommended", "missing-recommended", "orphan",
                     "service-without-owner", "service-without-support"]
    assert {c["class"] for c in doc["classes"]} == {"Service", "Application", "Server"}
    only = as_json(cmdb(tmp_path, "health", "--class", "Application", "--json", "--no-snapshot"))
    assert [i["rule"] for i in only["items"]] == ["orphan"] and only["class"] == "Application"
    # Two runs stored snapshots (the --no-snapshot one did not); fix the orphan and run again.
    (tmp_path / "fix.yaml").write_text("source: manual\nrelationships:\n"
                                       "  - {type: RUNS_ON, from: {class: Application, name: lonely-app},"
                                       " to: {class: Server, serial_number: SRV-1}}\n")
    cmdb(tmp_path, "load", str(tmp_path / "fix.yaml"))
    cmdb(tmp_path, "health", "--json")
    trend = as_json(cmdb(tmp_path, "health", "--trend", "--json"))
    assert trend["total"] == 3 and [i["seq"] for i in trend["items"]] == sorted(i["seq"] for i in trend["items"])
    scores = [i["classes"]["Application"]["score"] for i in trend["items"]]
    assert scores[0] == scores[1] < scores[2] == 100.0
    text = cmdb(tmp_path, "health", "--trend", "--class", "Application").stdout
    assert "Health of class Application over 3 run(s)" in text and "+" in text.splitlines()[-1]


def test_health_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "estate.yaml").write_text(ESTATE)
    cmdb(tmp_path, "load", str(tmp_path / "estate.yaml"))
    bad = cmdb(tmp_path, "health", "--class", "Sever", code=2)
    assert "unknown CI class 'Sever'" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "h.yaml").write_text("recommended:\n  Server: [serail_number]\n")
    bad = cmdb(tmp_path, "health", "--config", str(tmp_path / "h.yaml"), code=2)
    assert "serail_number" in bad.stderr and "h.yaml" in bad.stderr and "Traceback" not in bad.stderr
    # An override adds to the defaults: now Servers should also have a kernel.
    (tmp_path / "h.yaml").write_text("recommended:\n  Server: [kernel]\nstale_after_days: 7\n")
    doc = as_json(cmdb(tmp_path, "health", "--config", str(tmp_path / "h.yaml"), "--json", "--class", "Server"))
    assert [i["detail"]["attribute"] for i in doc["items"]] == ["kernel"] and doc["stale_after_days"] == 7
