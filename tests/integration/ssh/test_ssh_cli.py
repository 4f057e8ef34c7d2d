"""``cmdb discover ssh`` as an operator runs it: a real process, a real SQLite file, a real sshd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.ssh.conftest import Lab


def cmdb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, check=False)


def test_discover_ssh_from_the_command_line(ssh_lab: Lab, tmp_path: Path) -> None:
    creds = ssh_lab.lab.credentials_file(tmp_path / "credentials.yaml", profile="lab-root")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    known = tmp_path / "known_hosts"
    proc = cmdb("--store", db, "discover", "ssh", ssh_lab.db.address, "--credentials", str(creds),
                "--profile", "lab-root", "--known-hosts", str(known), "--trust-on-first-use", "--packages", "none",
                "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["method"] == "ssh" and record["targets"] == [ssh_lab.db.address]
    [outcome] = record["outcomes"]
    assert (outcome["outcome"], outcome["profile"]) == ("ok", "lab-root") and outcome["items"] > 5
    assert record["options"]["profiles"] == ["lab-root"] and record["options"]["trust_on_first_use"] is True
    assert known.exists() and ssh_lab.db.address in known.read_text()

    shown = json.loads(cmdb("--store", db, "ci", "show", "postgres@db1.lab.test", "--json").stdout)
    assert shown["class"] == "Database" and shown["attrs"]["engine"] == "postgresql"
    host = json.loads(cmdb("--store", db, "ci", "show", "db1", "--json").stdout)
    assert host["attrs"]["ssh_profile"] == "lab-root" and host["attrs"]["management_ip"] == ssh_lab.db.address
    runs = json.loads(cmdb("--store", db, "runs", "list", "--method", "ssh", "--json").stdout)
    assert [r["run_id"] for r in runs["items"]] == [record["run_id"]]

    # the next run needs no TOFU: the key is known now; an unknown host is refused without it
    again = cmdb("--store", db, "discover", "ssh", ssh_lab.db.address, ssh_lab.app.address, "--credentials",
                 str(creds), "--known-hosts", str(known), "--json")
    assert again.returncode == 1, again.stderr  # a target failed (its host key is unknown): exit status 1
    assert "1 of 2 targets failed (1 host_key_unknown)" in again.stderr
    outcomes = {o["target"]: o["outcome"] for o in json.loads(again.stdout)["outcomes"]}
    assert outcomes == {ssh_lab.db.address: "ok", ssh_lab.app.address: "host_key_unknown"}


def test_show_commands_lists_what_runs_on_a_host() -> None:
    proc = cmdb("discover", "ssh", "--show-commands", "--cert-path", "/etc/ssl")
    assert proc.returncode == 0, proc.stderr
    assert "ss -tanpH" in proc.stdout and "sh -s" in proc.stdout and "find /etc/ssl -maxdepth 3" in proc.stdout
