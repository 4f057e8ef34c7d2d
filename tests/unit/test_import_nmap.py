"""nmap XML, pure: parsing a recorded file, the batch shape, hostile and malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.errors import BadInputError
from importers.nmap import read_nmap, transform_nmap

DATA = Path(__file__).resolve().parent.parent / "data" / "nmap"


def test_recorded_file_parses_to_hosts_ports_and_certificates() -> None:
    hosts = read_nmap(DATA / "loopback.xml")
    assert [(h.address, h.state) for h in hosts] == [("127.0.0.1", "up"), ("192.0.2.10", "up"),
                                                     ("192.0.2.11", "down")]
    lo, lan, _ = hosts
    assert [(p.port, p.state, p.tls) for p in lo.ports] == [(1, "closed", False), (44673, "open", True),
                                                           (44911, "open", False)]
    assert lo.ports[1].cert_pem is not None and lo.ports[1].cert_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert (lo.ports[2].service, lo.ports[2].product, lo.ports[2].version) == (
        "ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3 protocol 2.0")
    assert (lan.mac, lan.mac_vendor, lan.os, lan.os_accuracy) == ("52:54:00:12:34:56", "QEMU virtual NIC",
                                                                  "Linux 5.0 - 5.5", 98)
    assert lan.hostnames == [("web-02.example.com", "PTR")]


def test_batches_have_the_scan_shape() -> None:
    reading = transform_nmap(read_nmap(DATA / "loopback.xml"))
    assert reading.notes == []
    lo, lan = reading.batches  # the down host makes no batch
    assert lo.source == "import:nmap" and lo.scope == "127.0.0.1/32" and not lo.complete
    by_class = {c.cls: c.attrs for c in lan.cis}
    assert by_class["Host"] == {"management_ip": "192.0.2.10", "ip_addresses": ["192.0.2.10"], "hostname": "web-02",
                                "fqdn": "web-02.example.com", "mac_addresses": ["52:54:00:12:34:56"],
                                "vendor": "QEMU virtual NIC", "os": "Linux 5.0 - 5.5"}
    endpoints = sorted((c.attrs["port"], c.attrs.get("service"), c.attrs.get("product")) for c in lan.cis
                       if c.cls == "ServiceEndpoint")
    assert endpoints == [(22, "ssh", "OpenSSH"), (80, "http", "nginx")]  # the filtered 443 is not open
    cert = next(c.attrs for c in lo.cis if c.cls == "Certificate")
    assert cert["subject"] == "CN=scan-test.example" and cert["not_after"] == "2026-12-24T13:47:58Z"
    assert cert["sans"] == ["scan-test.example", "www.scan-test.example", "127.0.0.209"]
    tls_ep = next(c for c in lo.cis if c.cls == "ServiceEndpoint" and c.attrs["port"] == 44673)
    assert tls_ep.attrs["tls"] is True and tls_ep.attrs["service"] == "tls"
    rels = {(r.type, r.src, r.dst) for r in lo.rels}
    assert ("USES_CERTIFICATE", "ep:tcp:44673", f"cert:{cert['fingerprint_sha256']}") in rels
    assert ("RUNS_ON", "ep:tcp:44911", "host") in rels and ("HAS_ADDRESS", "host", "ip") in rels


def test_entity_bomb_is_refused() -> None:
    with pytest.raises(BadInputError) as exc:
        read_nmap(DATA / "bomb.xml")
    assert str(exc.value) == (f"{DATA / 'bomb.xml'}: refused: the file declares XML entities (EntitiesForbidden), "
                              "which nmap never writes; an entity-expansion bomb or external reference is not read")


def test_malformed_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"truncated\.xml:\d+: not valid XML \(column \d+\): "):
        read_nmap(DATA / "truncated.xml")
    (tmp_path / "other.xml").write_text("<catalog><book/></catalog>")
    with pytest.raises(BadInputError, match=r"not nmap XML \(the root element is <catalog>, not <nmaprun>\)"):
        read_nmap(tmp_path / "other.xml")
