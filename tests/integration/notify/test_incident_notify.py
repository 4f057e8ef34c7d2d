"""Incident and change notifications through the outbox to a real SMTP server, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.notify.conftest import MailSink


def cmdb(tmp: Path, *args: str) -> Any:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{tmp / 'cmdb.db'}", "CMDB_CONFIG": str(tmp / "cmdb.yaml")}
    proc = subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def test_incident_and_change_notifications_reach_the_same_people(tmp_path: Path, mail: MailSink) -> None:
    (tmp_path / "cmdb.yaml").write_text(
        f"channels:\n  mail: {{type: email, host: {mail.host}, port: {mail.port}, from: cmdb@example.com}}\n")
    cmdb(tmp_path, "load", "--sample")
    report = cmdb(tmp_path, "impact", "incident", "erp-db", "--notify", "--record", "INC42",
                  "--workaround", "orders queue up", "--json")
    assert report["queued"]["thread"] == "INC42"
    groups = {n["role"]: sorted(t.split("<")[1].rstrip(">") for t in n["to"]) for n in report["notifications"]}
    assert len(report["queued"]["messages"]) == len(groups) == 5  # one message per stakeholder group
    assert cmdb(tmp_path, "outbox", "deliver", "--json")["sent"] == 5
    started = mail.take()
    assert sorted(sorted(r) for r, *_ in started) == sorted(groups.values())
    body = started[0][1].get_content()
    for fact in ("What: Incident: erp-db down", "Impacted services:", "Workaround: orders queue up", "When: since"):
        assert fact in body

    cmdb(tmp_path, "incidents", "update", "INC42", "--note", "failed over to the replica")
    cmdb(tmp_path, "incidents", "resolve", "INC42", "--note", "disk replaced")
    assert cmdb(tmp_path, "outbox", "deliver", "--json")["sent"] == 10
    follow = mail.take()
    updates = [m for m in follow if m[1]["Subject"].startswith("Update: ")]
    resolved = [m for m in follow if m[1]["Subject"].startswith("Resolved: ")]
    assert sorted(sorted(r) for r, *_ in updates) == sorted(groups.values())
    assert sorted(sorted(r) for r, *_ in resolved) == sorted(groups.values())
    assert "failed over to the replica" in updates[0][1].get_content()
    record = cmdb(tmp_path, "ci", "search", "INC42", "--json")["items"][0]
    assert record["attrs"]["state"] == "resolved"

    # A planned change on the same estate: its stakeholder groups hear of it the same way.
    report = cmdb(tmp_path, "impact", "change", "--ci", "erp-db", "--start", "2030-01-05T22:00:00Z",
                  "--end", "2030-01-05T23:00:00Z", "--record", "CHG7", "--notify", "--json")
    assert report["queued"]["thread"] == "CHG7" and report["queued"]["messages"]
    assert cmdb(tmp_path, "outbox", "deliver", "--json")["sent"] == len(report["queued"]["messages"])
    got = mail.take()
    assert got and all("Planned normal change CHG7 on erp-db" in m[1]["Subject"] for m in got)
