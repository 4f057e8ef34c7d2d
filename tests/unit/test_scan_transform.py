"""``cmdb scan`` pure parts on recorded probe results (tests/data/scan/*.json, recorded from real listeners).

The recordings: 127.0.0.241 served ``SSH-2.0-test`` on 42389, TLS on 52901 (a leaf and its test CA)
and refused 47687; 127.0.0.1 the same (its PTR is ``localhost``); .242 refused all three; .243 had the
banner port open and the TLS port filtered; .244 filtered everything; .245 had an SSH server on a
TLS port (handshake fails) and a silent one (handshake times out).
"""

from __future__ import annotations

import copy
import errno
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from cmdb.batch import Batch, IdentityRef
from cmdb.errors import BadInputError
from cmdb.ingest import ingest
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.certificates import SystemTrust, describe_certificate, pem_blocks
from discovery.outcomes import Outcome
from discovery.scan.ports import format_ports, parse_ports
from discovery.scan.probe import classify_connect_error, clean_banner
from discovery.scan.transform import names_of, transform_scan
from discovery.services import guess_service

DATA = Path(__file__).resolve().parent.parent / "data" / "scan"
LEAF_FP = "59a564e15ba5d6913a27e3f8e7452eaef4b3aab69654679d47a7e68c2a7fb302"
CA_FP = "b65347f98b27b73ef1880caaa2a745128ec5e70a81b749f1f315a7957af836d8"
SSH_PORT, TLS_PORT = 42389, 52901
ADDR = "127.0.0.241"


def raw(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return doc


def ref_text(r: str | IdentityRef) -> str:
    assert isinstance(r, str)
    return r


def shape(batch: Batch) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str, str]]]:
    cis = {(c.cls, c.ref or "", json.dumps(c.attrs, sort_keys=True)) for c in batch.cis}
    rels = {(r.type, ref_text(r.src), ref_text(r.dst), json.dumps(r.attrs, sort_keys=True)) for r in batch.rels}
    return cis, rels


def test_open_ports_become_host_address_endpoints_and_certificates() -> None:
    reading = transform_scan(raw("ssh_tls_closed"))
    assert (reading.outcome, reading.complete) == (Outcome.OK, True)
    batch = reading.batch
    assert batch is not None and (batch.source, batch.scope, batch.complete) == ("scan", "127.0.0.241/32", True)
    by_ref = {c.ref: (c.cls, c.attrs) for c in batch.cis}
    assert by_ref["device"] == ("Host", {"management_ip": "127.0.0.241", "ip_addresses": ["127.0.0.241"]})
    assert by_ref[f"ip:{ADDR}"] == ("IPAddress", {"address": "127.0.0.241"})
    assert by_ref[f"ep:{ADDR}:{SSH_PORT}"] == ("ServiceEndpoint", {
        "address": "127.0.0.241", "port": SSH_PORT, "protocol": "tcp", "service": "ssh", "banner": "SSH-2.0-test",
        "tls": False})
    assert by_ref[f"ep:{ADDR}:{TLS_PORT}"] == ("ServiceEndpoint", {
        "address": "127.0.0.241", "port": TLS_PORT, "protocol": "tcp", "service": "tls", "tls": True,
        "tls_verified": False})
    assert by_ref[f"cert:{LEAF_FP}"] == ("Certificate", {
        "subject": "CN=scan-test.example", "sans": ["scan-test.example", "www.scan-test.example", "127.0.0.209"],
        "issuer": "O=CMDB tests,CN=Scan Test CA", "serial": "67BC9C53FC3AF9B844800346DCDA920D8648F525",
        "fingerprint_sha256": LEAF_FP, "not_before": "2026-11-22T12:10:09Z", "not_after": "2026-11-27T13:10:09Z"})
    assert by_ref[f"cert:{CA_FP}"][1]["subject"] == "O=CMDB tests,CN=Scan Test CA"
    assert len(batch.cis) == 6  # the closed port left no trace
    _, rels = shape(batch)
    assert rels == {
        ("HAS_ADDRESS", "device", f"ip:{ADDR}", "{}"),
        ("RUNS_ON", f"ep:{ADDR}:{SSH_PORT}", "device", "{}"),
        ("RUNS_ON", f"ep:{ADDR}:{TLS_PORT}", "device", "{}"),
        ("USES_CERTIFICATE", f"ep:{ADDR}:{TLS_PORT}", f"cert:{LEAF_FP}", '{"chain_position": 0}'),
        ("USES_CERTIFICATE", f"ep:{ADDR}:{TLS_PORT}", f"cert:{CA_FP}", '{"chain_position": 1}'),
    }
    assert reading.detail == f"2 open, 1 closed: {SSH_PORT} ssh, {TLS_PORT} tls (2 certificates)"


def test_reverse_dns_names_the_host_but_loopback_names_only_the_address() -> None:
    local = transform_scan(raw("localhost_ssh_tls")).batch
    assert local is not None
    host, ip = local.cis[0].attrs, local.cis[1].attrs
    assert "hostname" not in host and "fqdn" not in host  # every box is "localhost": no identity in that
    assert ip["dns_name"] == "localhost"
    named = raw("ssh_tls_closed")
    named["ptr"] = "Web-01.Example.NET."
    batch = transform_scan(named).batch
    assert batch is not None
    assert batch.cis[0].attrs["hostname"] == "web-01" and batch.cis[0].attrs["fqdn"] == "web-01.example.net"
    assert batch.cis[1].attrs["dns_name"] == "web-01.example.net"
    assert {c.attrs.get("host_name") for c in batch.cis if c.cls == "ServiceEndpoint"} == {"web-01"}
    assert names_of({"name": "db1", "ptr": None}) == ("db1", "db1", None)
    assert names_of({}) == (None, None, None)


def test_every_port_refused_is_an_empty_complete_batch() -> None:
    reading = transform_scan(raw("all_closed"))
    assert reading.outcome == Outcome.OK and reading.batch is not None
    assert (reading.batch.cis, reading.batch.rels, reading.batch.complete) == ([], [], True)
    assert reading.batch.scope == "127.0.0.242/32"


def test_every_port_filtered_is_a_timeout_without_batch() -> None:
    reading = transform_scan(raw("all_filtered"))
    assert (reading.outcome, reading.batch) == (Outcome.TIMEOUT, None)
    assert "127.0.0.244" in reading.detail and "--timeout" in reading.detail


def test_unreachable_and_mixed_answers() -> None:
    doc = raw("all_filtered")
    doc["ports"][0]["state"] = "unreachable"
    reading = transform_scan(doc)
    assert (reading.outcome, reading.batch) == (Outcome.UNREACHABLE, None)
    doc["ports"][1]["state"] = "closed"  # someone answered: not unreachable, but nothing definite to age
    reading = transform_scan(doc)
    assert (reading.outcome, reading.batch) == (Outcome.OK, None)
    doc = raw("all_filtered")
    for p in doc["ports"]:
        p.update(state="error", error="Permission denied")
    reading = transform_scan(doc)
    assert reading.outcome == Outcome.ERROR and "Permission denied" in reading.detail


def test_a_filtered_port_makes_the_target_partial() -> None:
    reading = transform_scan(raw("partial_filtered"))
    assert reading.outcome == Outcome.OK and reading.batch is not None
    assert reading.batch.complete is False and "partial" in reading.detail
    assert [c.attrs["port"] for c in reading.batch.cis if c.cls == "ServiceEndpoint"] == [SSH_PORT]


def test_failed_and_timed_out_handshakes() -> None:
    doc = raw("tls_failed_and_timeout")
    failed, timed_out = (p["port"] for p in doc["ports"])  # the SSH server first, then the silent one
    reading = transform_scan(doc)
    assert reading.batch is not None and reading.batch.complete is False
    eps = {c.attrs["port"]: c.attrs for c in reading.batch.cis if c.cls == "ServiceEndpoint"}
    assert eps[failed]["tls"] is False  # the server answered, in something else than TLS
    assert "tls" not in eps[timed_out]  # no answer: unknown, and the target is partial
    assert f"{timed_out}: TLS handshake timed out" in reading.detail


def test_an_unparseable_certificate_is_skipped_and_makes_the_target_partial() -> None:
    doc = raw("ssh_tls_closed")
    doc["ports"][1]["tls"]["chain"][1] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    reading = transform_scan(doc)
    assert reading.batch is not None and reading.batch.complete is False
    assert [c.attrs["fingerprint_sha256"] for c in reading.batch.cis if c.cls == "Certificate"] == [LEAF_FP]
    assert "certificate 1 unparseable" in reading.detail


def test_tls_verified_is_written_for_tls_endpoints_only() -> None:
    batch = transform_scan(raw("ssh_tls_closed")).batch
    assert batch is not None
    assert [c.attrs.get("tls_verified") for c in batch.cis if c.cls == "ServiceEndpoint"] == [None, False]


def test_batches_ingest_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "scan.db")
    config = ReconcileConfig()
    try:
        first = transform_scan(raw("ssh_tls_closed")).batch
        assert first is not None
        created = ingest(store, first, config=config)
        assert (created.created, created.rels_created) == (6, 5)
        again = transform_scan(raw("ssh_tls_closed")).batch
        assert again is not None
        assert ingest(store, again, config=config).events == 0
        # The same address later refuses everything: complete empty batches age what it served.
        closed = raw("all_closed")
        closed.update(target="127.0.0.241", address="127.0.0.241")
        for _ in range(config.stale_after_runs):
            empty = transform_scan(closed).batch
            assert empty is not None
            ingest(store, empty, config=config)
        statuses = {c.cls: c.status for c in store.search(SearchQuery(limit=20)).items}
        assert statuses == {"Host": "stale", "IPAddress": "stale", "ServiceEndpoint": "stale", "Certificate": "stale"}
    finally:
        store.close()


def test_describe_certificate_and_trust_against_a_given_root() -> None:
    leaf, ca = (DATA / "leaf.pem").read_text(), (DATA / "ca.pem").read_text()
    assert describe_certificate(leaf)["fingerprint_sha256"] == LEAF_FP
    assert pem_blocks(leaf + ca) == [leaf, ca]
    during = datetime(2026, 11, 23, tzinfo=UTC)
    root = SystemTrust([x509.load_pem_x509_certificate(ca.encode())])
    assert root.check([leaf, ca], at=during).trusted is True
    assert root.check([leaf], at=during).trusted is True
    expired = root.check([leaf, ca], at=datetime(2026, 12, 1, tzinfo=UTC))
    assert expired.trusted is False
    assert SystemTrust([]).check([leaf]).trusted is None
    assert SystemTrust.load().check([leaf, ca], at=during).trusted is False


def test_ports_services_banners_and_errors() -> None:
    assert parse_ports("22,80,8000-8003, 443") == [22, 80, 443, 8000, 8001, 8002, 8003]
    assert parse_ports(["22", "22,23"]) == [22, 23]
    assert format_ports([22, 23, 24, 80, 8000, 8001]) == "22-24,80,8000-8001"
    for bad in ("0", "70000", "ssh", "90-80", ","):
        with pytest.raises(BadInputError, match="--ports"):
            parse_ports(bad)
    assert guess_service(2222, "SSH-2.0-OpenSSH_9.6", None) == "ssh"
    assert guess_service(25, "220 mx.example.com ESMTP Postfix", None) == "smtp"
    assert guess_service(21, "220 (vsFTPd 3.0.5)", None) == "ftp"
    assert guess_service(80, None, True) == "https"
    assert guess_service(40000, None, True) == "tls"
    assert guess_service(40000, None, None) is None
    assert clean_banner(b"\x00\x01SSH-2.0-x\x07y\r\nrest") == "SSH-2.0-x y"
    assert clean_banner(b"\r\n\r\n") is None
    assert classify_connect_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) == "closed"
    assert classify_connect_error(OSError(errno.EHOSTUNREACH, "no route")) == "unreachable"
    assert classify_connect_error(OSError(errno.ENETUNREACH, "no net")) == "unreachable"
    assert classify_connect_error(OSError(errno.ETIMEDOUT, "timed out")) == "filtered"
    assert classify_connect_error(OSError(errno.EACCES, "denied")) == "error"


def test_recordings_are_not_modified_by_transform() -> None:
    doc = raw("ssh_tls_closed")
    before = copy.deepcopy(doc)
    transform_scan(doc)
    assert doc == before
