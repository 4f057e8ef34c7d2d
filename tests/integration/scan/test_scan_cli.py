"""``cmdb scan`` as a user runs it: a real process probing real listeners on 127.0.0.208/28."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cmdb.batch import Batch, CIRecord
from cmdb.cli_output import opened_store
from cmdb.ingest import ingest
from cmdb.store.base import CIState, GraphStore, SearchQuery
from discovery.certificates import SystemTrust
from discovery.scan.probe import Prober, ProbeSettings
from tests.integration.scan.conftest import (
    A_FILTERED,
    A_FULL,
    A_PARTIAL,
    A_TLS_ONLY,
    LEAF_SANS,
    ScanLab,
)


def cmdb(store_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``cmdb --store URL args``; ``cmdb scan`` also takes ``--store`` after its arguments (as users type it)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("CMDB_STORE", None)
    argv = [*args, "--store", store_url] if args[0] == "scan" else ["--store", store_url, *args]
    proc = subprocess.run([sys.executable, "-m", "product.cli", *argv], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def scan(lab: ScanLab, store_url: str, *extra: str) -> dict[str, Any]:
    """The lab scan; no reverse DNS, since PTR queries for 127.0.0.208/28 would leave loopback for the resolver."""
    ports = f"{lab.banner_port},{lab.tls_port},{lab.closed_port}"
    out = cmdb(store_url, "scan", lab.network, "--ports", ports, "--tls-ports", str(lab.tls_port),
               "--timeout", "0.5", "--exclude", lab.addresses[-1], "--no-dns", "--json", *extra)
    record: dict[str, Any] = json.loads(out.stdout)
    return record


def cis(store: GraphStore, cls: str) -> list[CIState]:
    return store.search(SearchQuery(classes=[cls], limit=500)).items


def test_scan_finds_listeners_certificates_and_nothing_else(scan_lab: ScanLab, tmp_path: Path) -> None:
    lab, url = scan_lab, f"sqlite:///{tmp_path / 'scan.db'}"
    first = scan(lab, url)
    outcomes = {o["target"]: o for o in first["outcomes"]}
    assert set(outcomes) == set(lab.addresses[:-1])  # --exclude left the last address out
    assert outcomes[A_FULL]["outcome"] == "ok" and outcomes[A_FULL]["items"] > 0
    assert outcomes[A_TLS_ONLY]["outcome"] == "ok" and outcomes[A_TLS_ONLY]["items"] > 0
    assert outcomes[A_PARTIAL]["outcome"] == "ok" and "partial" in outcomes[A_PARTIAL]["detail"]
    assert outcomes[A_FILTERED]["outcome"] == "timeout"
    for a in lab.addresses[4:-1]:
        assert (outcomes[a]["outcome"], outcomes[a]["items"]) == ("ok", 0), outcomes[a]
    assert first["options"]["tls_chain"] == "served_chain"

    with opened_store(url) as store:
        endpoints = {(c.attrs["address"], c.attrs["port"]): c for c in cis(store, "ServiceEndpoint")}
        assert set(endpoints) == {(A_FULL, lab.banner_port), (A_FULL, lab.tls_port), (A_TLS_ONLY, lab.tls_port),
                                  (A_PARTIAL, lab.banner_port)}  # no closed, filtered or listener-less ports
        ssh = endpoints[(A_FULL, lab.banner_port)].attrs
        assert (ssh["banner"], ssh["service"], ssh["tls"], ssh["protocol"]) == ("SSH-2.0-test", "ssh", False, "tcp")
        tls = endpoints[(A_FULL, lab.tls_port)].attrs
        assert (tls["tls"], tls["service"]) == (True, "tls") and "banner" not in tls

        hosts = cis(store, "Host")
        assert sorted(h.attrs["management_ip"] for h in hosts) == sorted([A_FULL, A_TLS_ONLY, A_PARTIAL])
        assert all(h.attrs["ip_addresses"] == [h.attrs["management_ip"]] for h in hosts)
        assert sorted(c.attrs["address"] for c in cis(store, "IPAddress")) == sorted([A_FULL, A_TLS_ONLY, A_PARTIAL])

        certs = {c.attrs["fingerprint_sha256"]: c for c in cis(store, "Certificate")}
        leaf_fp, ca_fp = lab.pki.fingerprint(lab.pki.leaf), lab.pki.fingerprint(lab.pki.ca)
        assert set(certs) == {leaf_fp, ca_fp}
        leaf = certs[leaf_fp].attrs
        assert leaf["sans"] == sorted(LEAF_SANS)  # the schema keeps lists sorted
        assert leaf["subject"] == "CN=scan-test.example"
        assert leaf["issuer"] == "O=CMDB tests,CN=Scan Test CA"
        assert leaf["not_after"].replace("+00:00", "Z") == lab.pki.leaf.not_valid_after_utc.isoformat().replace(
            "+00:00", "Z")
        assert int(leaf["serial"], 16) == lab.pki.leaf.serial_number

        uses = store.relationships(type="USES_CERTIFICATE")
        by_ep = {(r.src, r.dst): r.attrs.get("chain_position") for r in uses}
        for ep in (endpoints[(A_FULL, lab.tls_port)], endpoints[(A_TLS_ONLY, lab.tls_port)]):
            assert by_ep[(ep.id, certs[leaf_fp].id)] == 0
            assert by_ep[(ep.id, certs[ca_fp].id)] == 1
        assert len(uses) == 4
        host_of = {h.attrs["management_ip"]: h.id for h in hosts}
        runs_on = {(r.src, r.dst) for r in store.relationships(type="RUNS_ON")}
        assert runs_on == {(ep.id, host_of[addr]) for (addr, _port), ep in endpoints.items()}
        has_address = store.relationships(type="HAS_ADDRESS")
        assert {r.src for r in has_address} == set(host_of.values())

    second = scan(lab, url)
    assert [(o["target"], o["outcome"]) for o in second["outcomes"]] == [
        (o["target"], o["outcome"]) for o in first["outcomes"]]
    assert sum(o["changes"] for o in second["outcomes"]) == 0, second["outcomes"]

    shown = json.loads(cmdb(url, "runs", "show", second["run_id"], "--json").stdout)
    assert shown["method"] == "scan" and len(shown["outcomes"]) == len(lab.addresses) - 1
    assert {o["target"]: o["outcome"] for o in shown["outcomes"]}[A_FILTERED] == "timeout"


def test_reverse_dns_names_the_address(localhost_banner: int, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dns.db'}"
    record = json.loads(cmdb(url, "scan", "127.0.0.1", "--ports", str(localhost_banner), "--json").stdout)
    assert record["outcomes"][0]["outcome"] == "ok" and record["options"]["dns"] is True
    with opened_store(url) as store:
        [ip] = cis(store, "IPAddress")
        assert (ip.attrs["address"], ip.attrs["dns_name"]) == ("127.0.0.1", "localhost")
        [host] = cis(store, "Host")
        assert "hostname" not in host.attrs  # "localhost" names every box: kept on the address only
        [ep] = cis(store, "ServiceEndpoint")
        assert ep.attrs["banner"] == "SSH-2.0-test"


def test_same_device_seen_by_snmp_merges_through_management_ip(scan_lab: ScanLab, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'merge.db'}"
    cmdb(url, "scan", A_FULL, "--ports", str(scan_lab.banner_port), "--no-dns", "--json")
    snmp = Batch(source="snmp", scope=f"{A_FULL}/32", cis=[
        CIRecord("Switch", {"management_ip": A_FULL, "hostname": "edge-sw1", "sys_object_id": "1.3.6.1.4.1.9.1.1"})])
    with opened_store(url) as store:
        [scanned] = cis(store, "Host")
        ingest(store, snmp)
        devices = store.search(SearchQuery(classes=["Host", "Switch"], limit=10)).items
        assert [d.id for d in devices] == [scanned.id]
        assert devices[0].attrs["hostname"] == "edge-sw1"


def test_concurrency_limit_holds(scan_lab: ScanLab, tmp_path: Path) -> None:
    lab = scan_lab
    lab.silent.reset()
    record = json.loads(cmdb(f"sqlite:///{tmp_path / 'c.db'}", "scan", lab.network, "--ports", str(lab.silent_port),
                             "--concurrency", "3", "--banner-timeout", "0.3", "--no-dns", "--json").stdout)
    assert all(o["outcome"] == "ok" and o["items"] > 0 for o in record["outcomes"])
    assert len(lab.silent.accepted_at) == len(lab.addresses)
    # Each probe holds its connection for the banner timeout; without the limit all 14 are open at once.
    # The server may see the next connect a moment before the previous close, hence the +1.
    assert 2 <= lab.silent.peak <= 3 + 1, lab.silent.peak


def test_rate_limit_holds(scan_lab: ScanLab, tmp_path: Path) -> None:
    lab = scan_lab
    lab.silent.reset()
    cmdb(f"sqlite:///{tmp_path / 'r.db'}", "scan", lab.network, "--ports", str(lab.silent_port), "--rate", "10",
         "--banner-timeout", "0.05", "--no-dns", "--json")
    times = sorted(lab.silent.accepted_at)
    assert len(times) == len(lab.addresses)
    # 14 connects at 10/s with a burst of one: at least 1.3 s from the first to the last.
    assert times[-1] - times[0] >= 1.2, times[-1] - times[0]


def test_served_chain_verifies_only_against_a_store_holding_its_root(scan_lab: ScanLab) -> None:
    lab = scan_lab
    settings = ProbeSettings(ports=(lab.tls_port,), tls_ports=frozenset({lab.tls_port}), dns=False)

    async def probe(trust: SystemTrust) -> dict[str, Any]:
        prober = Prober(settings, trust)
        try:
            raw = await prober.probe_target(A_FULL)
        finally:
            prober.close()
        tls: dict[str, Any] = raw["ports"][0]["tls"]
        return tls

    started = time.monotonic()
    ours = asyncio.run(probe(SystemTrust([lab.pki.ca])))
    assert ours["status"] == "ok" and ours["chain_source"] == "served_chain"
    assert ours["chain"] == [lab.pki.pem(lab.pki.leaf), lab.pki.pem(lab.pki.ca)]
    assert ours["trusted"] is True, ours["trust_detail"]
    system = asyncio.run(probe(SystemTrust.load()))
    assert system["trusted"] is False
    assert time.monotonic() - started < 10
