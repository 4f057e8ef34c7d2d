"""``cmdb discover snmp`` and ``cmdb runs show`` as a user runs them: real processes, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from snmp_agents import SnmpsimAgents

from tests.integration.snmp.conftest import Profiles


def cmdb(store: str, *args: str) -> Any:
    proc = subprocess.run([sys.executable, "-m", "product.cli", "--store", store, *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_discover_snmp_then_show_the_run(profiles: Profiles, lab: SnmpsimAgents, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    run = cmdb(store, "discover", "snmp", "127.0.1.1-3", "--credentials", str(profiles.path), "--profile", "bad-v2c",
               "--profile", "lab-v2c", "--timeout", "0.5", "--retries", "0", "--max-repetitions", "10", "--json")
    assert run["method"] == "snmp"
    assert run["targets"] == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
    assert [(o["target"], o["outcome"], o["profile"]) for o in run["outcomes"]] == [
        ("127.0.1.1", "ok", "lab-v2c"), ("127.0.1.2", "ok", "lab-v2c"), ("127.0.1.3", "ok", "lab-v2c")]
    assert all(o["items"] > 10 and o["changes"] > 0 for o in run["outcomes"])
    assert run["options"] == {"profiles": ["bad-v2c", "lab-v2c"], "exclude": [], "concurrency": 32, "timeout": 0.5,
                              "retries": 0, "max_repetitions": 10, "target_timeout": None}

    shown = cmdb(store, "runs", "show", run["run_id"], "--json")
    assert shown["run_id"] == run["run_id"] and shown["outcomes"] == run["outcomes"]
    switch = cmdb(store, "ci", "show", "sw-acc-2", "--json")
    assert switch["class"] == "Switch" and switch["attrs"]["snmp_profile"] == "lab-v2c"

    again = cmdb(store, "discover", "snmp", "127.0.1.1-3", "--exclude", "127.0.1.2", "--credentials",
                 str(profiles.path), "--profile", "bad-v2c", "--profile", "lab-v2c", "--timeout", "0.5", "--json")
    # the profile that worked is remembered: no waiting for the wrong community, and nothing changed
    assert [(o["target"], o["changes"]) for o in again["outcomes"]] == [("127.0.1.1", 0), ("127.0.1.3", 0)]
    assert all(o["seconds"] < 0.5 for o in again["outcomes"])
