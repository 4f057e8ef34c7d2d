"""``cmdb rel show`` (a relationship's provenance) and what ``cmdb load`` and its dry run report, as a user
meets them: the CLI run as a process on a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli_batches import cmdb, ok

MAC = "02:00:5e:00:bb:01"
SNMP = """source: snmp
cis:
  - {ref: a, class: Server, hostname: rs-1, serial_number: RS-1}
  - {ref: b, class: Switch, hostname: rs-sw, serial_number: RS-SW}
relationships:
  - {type: CONNECTED_TO, from: a, to: b, attributes: {port: Gi0/3}}
"""
SCAN = SNMP.replace("source: snmp", "source: scan").replace("port: Gi0/3", "port: eth3, vlan: 30")
FQDN = "source: import\ncis:\n  - {class: Server, fqdn: rs-db.example.com}\n"
BY_MAC = f"source: ssh\ncis:\n  - {{class: Server, mac_addresses: ['{MAC}']}}\n"
TIES = f"source: ssh\ncis:\n  - {{class: Server, fqdn: rs-db.example.com, mac_addresses: ['{MAC}']}}\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("relshow") / "cmdb.db"
    ok(cmdb(path, "load", "-", stdin=SNMP))
    ok(cmdb(path, "load", "-", stdin=SCAN))
    return path


def test_rel_show_by_ends_and_by_id(store: Path) -> None:
    doc = json.loads(ok(cmdb(store, "rel", "show", "rs-1", "CONNECTED_TO", "RS-SW", "--json")).stdout)
    assert doc["schema_version"] == 1 and doc["type"] == "CONNECTED_TO" and doc["status"] == "active"
    port = doc["attributes"]["port"]
    assert (port["value"], port["source"]) == ("Gi0/3", "snmp")
    assert [(s["source"], s["value"], s["current"]) for s in port["sources"]] == [
        ("snmp", "Gi0/3", True), ("scan", "eth3", False)]
    assert doc["attributes"]["vlan"]["value"] == 30 and all(s["last_seen"] for s in port["sources"])
    by_id = json.loads(ok(cmdb(store, "--json", "rel", "show", doc["id"])).stdout)
    assert by_id == doc
    text = ok(cmdb(store, "rel", "show", doc["id"])).stdout
    assert "rs-1 (Server) -CONNECTED_TO-> rs-sw (Switch)" in text
    assert "snmp: Gi0/3" in text and "scan: eth3" in text and "seen by scan" in text


def test_rel_show_errors_have_exit_codes(store: Path) -> None:
    missing = cmdb(store, "rel", "show", "rs-1", "DEPENDS_ON", "rs-sw")
    assert missing.returncode == 3 and "no DEPENDS_ON relationship" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert cmdb(store, "rel", "show", "rel-nosuch").returncode == 3
    bad = cmdb(store, "--json", "rel", "show", "rs-1", "CONNECTED_TO")
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"]["exit_code"] == 2
    assert cmdb(store, "rel", "show", "rs-1", "NO_SUCH_TYPE", "rs-sw").returncode == 2


def test_a_dry_run_of_a_merge_says_what_the_load_then_does(tmp_path: Path) -> None:
    path = tmp_path / "merge.db"
    ok(cmdb(path, "load", "-", stdin=FQDN))
    ok(cmdb(path, "load", "-", stdin=BY_MAC))
    dry = json.loads(ok(cmdb(path, "load", "-", "--dry-run", "--json", stdin=TIES)).stdout)["items"][0]
    assert (dry["conflicts"], dry["merged"], dry["would_update"]) == (0, 1, 1)
    (item,) = dry["plan"]
    assert item["action"] == "update" and len(item["merged"]) == 1
    real = json.loads(ok(cmdb(path, "load", "-", "--json", stdin=TIES)).stdout)["items"][0]
    assert {k: real[k] for k in dry["summary"]} == dry["summary"]
    text = ok(cmdb(path, "load", "-", stdin=FQDN.replace("rs-db", "rs-db2"))).stdout
    assert "1 created" in text and "merged" not in text  # only what happened is spelled out
