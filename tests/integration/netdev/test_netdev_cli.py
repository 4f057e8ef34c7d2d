"""``cmdb discover devices`` as a user runs it: a real process, real simulators, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Lab


def cmdb(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("CMDB_STORE", None)
    return subprocess.run([sys.executable, "-m", "product.cli", "--store", f"sqlite:///{store}", *args],
                          capture_output=True, text=True, env=env, timeout=60, check=False, stdin=subprocess.DEVNULL)


def test_discover_devices_command(netdev_lab: Lab, tmp_path: Path) -> None:
    store, known_hosts = tmp_path / "cli.db", tmp_path / "known_hosts"
    creds = netdev_lab.credentials(tmp_path, {"P": None})
    sw1, leaf1 = netdev_lab.addresses["sw1"], netdev_lab.addresses["leaf1"]
    proc = cmdb(store, "discover", "devices", sw1, leaf1, "--credentials", str(creds), "--profile", "P",
                "--known-hosts", str(known_hosts), "--trust-on-first-use", "--json")
    assert proc.returncode == 0, proc.stderr
    record: dict[str, Any] = json.loads(proc.stdout)
    assert record["method"] == "netdev" and record["targets"] == [sw1, leaf1]
    assert [(o["target"], o["outcome"], o["profile"]) for o in record["outcomes"]] == [
        (sw1, "ok", "P"), (leaf1, "ok", "P")]
    assert all(o["items"] > 10 for o in record["outcomes"])
    assert record["options"]["profiles"] == ["P"] and record["options"]["trust_on_first_use"] is True
    assert netdev_lab.password not in proc.stdout + proc.stderr

    shown = json.loads(cmdb(store, "ci", "show", "FOC2231X0AB", "--json").stdout)  # sw1, found by its serial
    assert (shown["class"], shown["attrs"]["hostname"], shown["attrs"]["ssh_profile"]) == ("Switch", "sw1", "P")
    runs = json.loads(cmdb(store, "runs", "list", "--method", "netdev", "--json").stdout)
    assert [r["run_id"] for r in runs["items"]] == [record["run_id"]]

    # The second run knows the keys now: without trust on first use it still gets in.
    again = cmdb(store, "discover", "devices", leaf1, "--credentials", str(creds), "--profile", "P",
                 "--known-hosts", str(known_hosts), "--json")
    assert [o["outcome"] for o in json.loads(again.stdout)["outcomes"]] == ["ok"], again.stderr
