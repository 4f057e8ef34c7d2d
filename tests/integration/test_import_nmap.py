"""Debian's real nmap scans listeners this test opens on loopback (one serving TLS); its XML is imported."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.scan import conftest as scan_lab
from tests.integration.test_cli import cmdb

BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


class Listeners:
    """A banner listener and a TLS listener on 127.0.0.1, served by threads until closed."""

    def __init__(self, pki: scan_lab.TestPki) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki.chain_file, pki.key_file)
        self.socks: list[socket.socket] = []
        self.banner_port = self._listen(self._banner)
        self.tls_port = self._listen(self._tls)

    def _listen(self, handler: object) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(32)
        self.socks.append(s)
        threading.Thread(target=self._accept, args=(s, handler), daemon=True).start()
        return int(s.getsockname()[1])

    def _accept(self, s: socket.socket, handler: object) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.settimeout(20)  # longer than nmap's wait for a greeting, or the port looks "tcpwrapped"
            threading.Thread(target=handler, args=(conn,), daemon=True).start()  # type: ignore[arg-type]

    def _banner(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.sendall(BANNER)
            conn.recv(1024)

    def _tls(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, self.ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)

    def close(self) -> None:
        for s in self.socks:
            s.close()


@pytest.fixture(scope="module")
def nmap_xml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, scan_lab.TestPki, Listeners]]:
    nmap = shutil.which("nmap")
    assert nmap, "nmap is not installed: run CMDB_WITH_TEST_SERVERS=1 scripts/bootstrap.sh"
    d = tmp_path_factory.mktemp("nmap")
    pki = scan_lab.make_pki(d, days=12)
    lab = Listeners(pki)
    out = d / "scan.xml"
    try:
        subprocess.run([nmap, "-sT", "-Pn", "-n", "-sV", "--version-intensity", "0", "--script", "ssl-cert",
                        "-p", f"{lab.banner_port},{lab.tls_port}", "--host-timeout", "60s", "-oX", str(out),
                        "127.0.0.1"], check=True, capture_output=True, timeout=120)
        yield out, pki, lab
    finally:
        lab.close()


def test_real_nmap_output_imports_with_certificate_and_reimport_changes_nothing(
        nmap_xml: tuple[Path, scan_lab.TestPki, Listeners], tmp_path: Path) -> None:
    xml, pki, lab = nmap_xml
    first = json.loads(cmdb(tmp_path, "import", str(xml), "--json").stdout)
    assert first["created"] == 5 and first["conflicts"] == 0  # host, address, 2 endpoints, certificate
    endpoints = json.loads(cmdb(tmp_path, "ci", "list", "--class", "ServiceEndpoint", "--json").stdout)["items"]
    by_port = {e["attrs"]["port"]: e["attrs"] for e in endpoints}
    assert by_port[lab.banner_port]["service"] == "ssh" and by_port[lab.banner_port]["product"] == "OpenSSH"
    assert by_port[lab.tls_port]["tls"] is True
    certs = json.loads(cmdb(tmp_path, "ci", "list", "--class", "Certificate", "--json").stdout)["items"]
    assert len(certs) == 1
    cert = certs[0]["attrs"]
    assert cert["fingerprint_sha256"] == pki.fingerprint(pki.leaf)
    assert cert["not_after"] == pki.leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    again = json.loads(cmdb(tmp_path, "import", str(xml), "--json").stdout)
    assert (again["created"], again["updated"], again["events"]) == (0, 0, 0)


def test_entity_bomb_refused_by_the_cli(tmp_path: Path) -> None:
    bomb = Path(__file__).resolve().parent.parent / "data" / "nmap" / "bomb.xml"
    proc = cmdb(tmp_path, "import", str(bomb), ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "refused: the file declares XML entities" in proc.stderr
