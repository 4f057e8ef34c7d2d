"""``cmdb discover aws`` as a user runs it: a real process, a named profile, moto on loopback, a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from moto_lab import ACCOUNT, Estate, MotoServer


def cmdb(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "product.cli", "--store", store, *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120, check=False)


def test_discover_aws_then_show_the_run(estate: Estate, moto_server: MotoServer, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    proc = cmdb(store, "discover", "aws", "--profile", "estate", "--regions", "us-east-1", "--services",
                "ec2,elbv2,acm", "--endpoint-url", moto_server.url, "--json", "--record", str(tmp_path / "rec"))
    assert proc.returncode == 0, proc.stderr
    recorded = sorted(p.name for p in (tmp_path / "rec" / "aws").iterdir())
    assert recorded == [f"aws_{ACCOUNT}_us-east-1_{s}.json" for s in ("acm", "ec2", "elbv2")]
    run = json.loads(proc.stdout)
    assert run["method"] == "aws"
    assert [(o["target"], o["outcome"], o["profile"]) for o in run["outcomes"]] == [
        (f"aws:{ACCOUNT}:us-east-1:{s}", "ok", "estate") for s in ("ec2", "elbv2", "acm")]
    assert all(o["items"] > 0 and o["changes"] > 0 for o in run["outcomes"])
    assert {b["scope"] for b in run["options"]["run_level_batches"]} >= {f"aws:{ACCOUNT}:us-east-1:elbv2:links"}
    shown = json.loads(cmdb(store, "runs", "show", run["run_id"], "--json").stdout)
    assert shown["outcomes"] == run["outcomes"]
    ci = json.loads(cmdb(store, "ci", "show", "web-1", "--json").stdout)
    assert ci["class"] == "CloudInstance" and ci["attrs"]["cloud_instance_id"] == estate.instances["web-1"]

    table = cmdb(store, "discover", "aws", "--profile", "estate", "--regions", "us-east-1", "--services", "ec2",
                 "--endpoint-url", moto_server.url)
    assert table.returncode == 0 and "API calls" in table.stderr and "testing" not in table.stdout + table.stderr


def test_bad_options_are_clear_errors(tmp_path: Path, moto_server: MotoServer) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    bad = cmdb(store, "discover", "aws", "--services", "ec2,bogus", "--regions", "us-east-1")
    assert bad.returncode != 0 and "bogus" in bad.stderr and "Traceback" not in bad.stderr
    both = cmdb(store, "discover", "aws", "--regions", "us-east-1", "--all-regions")
    assert both.returncode != 0 and "not both" in both.stderr
    missing = cmdb(store, "discover", "aws", "--profile", "no-such-profile", "--endpoint-url", moto_server.url)
    assert missing.returncode != 0 and "no-such-profile" in missing.stderr and "Traceback" not in missing.stderr


def test_an_account_that_cannot_be_reached_is_an_outcome(tmp_path: Path, moto_server: MotoServer) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    proc = cmdb(store, "discover", "aws", "--profile", "no-such-profile", "--profile", "estate", "--regions",
                "us-east-1", "--services", "s3", "--endpoint-url", moto_server.url, "--json")
    assert proc.returncode == 1, proc.stderr  # the run was made and recorded; a target failed
    assert "1 of 2 targets failed (1 denied)" in proc.stderr
    run = json.loads(proc.stdout)
    assert [(o["target"], o["outcome"]) for o in run["outcomes"]] == [
        ("aws:no-such-profile:*:*", "denied"), (f"aws:{ACCOUNT}:global:s3", "ok")]
    assert "no-such-profile" in run["outcomes"][0]["detail"]
