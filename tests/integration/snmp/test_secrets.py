"""No community or v3 key ever shows: not in logs (DEBUG), the store, the run record, the CLI output."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from snmp_agents import SnmpdAgent, SnmpsimAgents

from cmdb.store.sqlite import SqliteStore
from discovery.credentials import SnmpProfile, load_credentials
from discovery.runner import run_discovery
from discovery.snmp.client import SnmpSettings
from discovery.snmp.collector import SnmpCollector
from tests.integration.snmp.conftest import Profiles

ALL_PROFILES = ["bad-v3", "bad-v2c", "snmpd-v3", "snmpd-v2c", "lab-v2c"]


def leaks(text: str, secret_values: list[str]) -> list[str]:
    forms = [(s, form) for s in secret_values for form in (s, s.encode().hex(), repr(s.encode()))]
    return [s for s, form in forms if form in text]


def test_secrets_stay_secret(profiles: Profiles, snmpd: SnmpdAgent, lab: SnmpsimAgents, tmp_path: Path,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    try:
        chosen = [p for p in load_credentials(profiles.path).pick(ALL_PROFILES, "snmp") if isinstance(p, SnmpProfile)]
        collector = SnmpCollector(chosen, SnmpSettings(timeout=0.3, retries=0))
        record = asyncio.run(run_discovery(collector, [snmpd.host, "127.0.1.1", "127.0.1.2", "127.0.1.9"], store,
                                           options={"profiles": ALL_PROFILES}))
        outcomes = {o["target"]: o["outcome"] for o in record.outcomes}
        assert outcomes == {snmpd.host: "ok", "127.0.1.1": "ok", "127.0.1.2": "ok", "127.0.1.9": "refused"}
        # the wrong v3 key was tried on snmpd and refused there: the error path ran too
        dumped = json.dumps(list(store.dump()), default=str)
        run_text = json.dumps(asdict(record), default=str) + json.dumps(
            [asdict(r) for r in store.discovery_runs()], default=str)
    finally:
        store.close()
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "snmp" in logs and "bad-v3" in logs  # the debug log did speak about the profiles, by name

    env = {**os.environ, "COLUMNS": "200"}
    cli_db = f"sqlite:///{tmp_path / 'cli.db'}"
    base = [sys.executable, "-m", "product.cli", "--store", cli_db]
    discover = subprocess.run(
        [*base, "discover", "snmp", snmpd.host, "127.0.1.1", "127.0.1.9", "--credentials", str(profiles.path),
         *[arg for name in ALL_PROFILES for arg in ("--profile", name)], "--timeout", "0.3", "--retries", "0"],
        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert discover.returncode == 1, discover.stderr  # targets failed: the run is recorded, the status says so
    assert "refused" in discover.stdout
    listed = subprocess.run([*base, "runs", "list", "--json"], capture_output=True, text=True, env=env, timeout=60,
                            check=True)
    run_id = json.loads(listed.stdout)["items"][0]["run_id"]
    shown = subprocess.run([*base, "runs", "show", run_id], capture_output=True, text=True, env=env, timeout=60,
                           check=True)

    raw_files = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*")).decode("latin-1")
    for where, text in (("logs", logs), ("store dump", dumped), ("run record", run_text),
                        ("cli discover", discover.stdout + discover.stderr), ("cli runs show", shown.stdout),
                        ("database files", raw_files)):
        assert leaks(text, profiles.secrets) == [], f"a secret leaked into the {where}"
