"""``cmdb config show`` and ``cmdb config check`` as an operator runs them (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CMDB__") and k != "CMDB_CONFIG"}
    full = {**clean, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "CMDB_STORE": f"sqlite:///{tmp_path / 'c.db'}",
            "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=full,
                          timeout=60, check=False)


def test_check_lists_every_problem_and_show_says_where_values_come_from(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("reconciliation: {stale_after_runs: 0}\ntasks: {thresholds_days: []}\n"
                   "scheduler: {jobs: {nightly: {kind: scan, cron: 'every night'}}}\nbogus: {}\n")
    proc = run(tmp_path, "config", "check", "--config", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for text in ("reconciliation.stale_after_runs: Input should be greater than or equal to 1",
                 "tasks.thresholds_days: thresholds are non-empty lists", "scheduler.jobs.nightly",
                 "bad cron expression 'every night'", "bogus: unknown section", "4 problem(s)"):
        assert text in proc.stderr, proc.stderr
    as_json = json.loads(run(tmp_path, "config", "check", "--json", CMDB_CONFIG=str(bad)).stdout)
    assert as_json["ok"] is False and len(as_json["problems"]) == 4

    user = tmp_path / "xdg" / "cmdb" / "config.yaml"  # the standard place, no option or variable needed
    user.parent.mkdir(parents=True)
    user.write_text("reconciliation: {stale_after_runs: 2}\n"
                    "channels: {hook: {type: webhook, url: 'https://hooks.example.com/x',"
                    " headers: {Authorization: Bearer s3cr3t}}}\n")
    assert run(tmp_path, "config", "check").stdout.strip() == f"ok: {user}"
    shown = json.loads(run(tmp_path, "config", "show", "--json", CMDB__RECONCILIATION__RETIRE_AFTER_RUNS="8").stdout)
    assert shown["file"] == str(user)
    rows = {r["key"]: r for r in shown["items"]}
    assert rows["reconciliation.stale_after_runs"] == {"key": "reconciliation.stale_after_runs", "value": 2,
                                                       "from": f"file {user}"}
    assert rows["reconciliation.retire_after_runs"]["from"] == "env CMDB__RECONCILIATION__RETIRE_AFTER_RUNS"
    assert rows["reconciliation.fresh_for_hours"]["from"] == "default"
    assert rows["channels.hook.headers.Authorization"]["value"] == "***"
    assert "s3cr3t" not in json.dumps(shown)
    missing = run(tmp_path, "config", "show", CMDB_CONFIG=str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
