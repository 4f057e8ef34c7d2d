"""The whole renewal flow with real parts: a TLS listener, ``cmdb scan``, the expiry cycle, an e-mail to the
owner at a real SMTP server; then the listener serves a renewed certificate and the next scan and cycle
(run by ``cmdb scheduler --once``: a discovery job and an expiry job) resolve the task, naming the new
certificate."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.notify.conftest import MailSink
from tests.integration.scan import conftest as scan_lab


class SwitchableTlsListener:
    """A TLS server on loopback whose certificate chain can be swapped between connections."""

    def __init__(self, pki: scan_lab.TestPki) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.serve(pki)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def serve(self, pki: scan_lab.TestPki) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki.chain_file, pki.key_file)
        self.context = ctx

    def _loop(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stopping = True
        self.sock.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[SwitchableTlsListener, scan_lab.TestPki, scan_lab.TestPki]]:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    expiring, renewed = scan_lab.make_pki(tmp_path / "old", days=10), scan_lab.make_pki(tmp_path / "new", days=365)
    server = SwitchableTlsListener(expiring)
    try:
        yield server, expiring, renewed
    finally:
        server.close()


def cmdb(tmp: Path, *args: str) -> Any:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{tmp / 'cmdb.db'}", "CMDB_CONFIG": str(tmp / "cmdb.yaml")}
    proc = subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def scan(tmp: Path, port: int) -> None:
    cmdb(tmp, "scan", "127.0.0.1", "--ports", str(port), "--tls-ports", str(port), "--no-dns", "--json")


def test_expiring_certificate_to_owner_by_mail_then_renewal_resolves(
        tmp_path: Path, mail: MailSink, listener: tuple[SwitchableTlsListener, scan_lab.TestPki, scan_lab.TestPki],
) -> None:
    server, expiring, renewed = listener
    (tmp_path / "cmdb.yaml").write_text(
        f"channels:\n  mail: {{type: email, host: {mail.host}, port: {mail.port}, from: cmdb@example.com}}\n")
    scan(tmp_path, server.port)
    old_fp = expiring.fingerprint(expiring.leaf)
    [leaf] = cmdb(tmp_path, "ci", "search", "--class", "Certificate", "--attr", f"fingerprint_sha256={old_fp}",
                  "--json")["items"]
    subject = leaf["attrs"]["subject"]
    (tmp_path / "owners.yaml").write_text(f"""\
source: import:owners
cis:
  - {{ref: cert, class: Certificate, subject: "{subject}", fingerprint_sha256: "{old_fp}"}}
  - {{ref: dana, class: Person, name: Dana Web, email: dana@example.com}}
relationships:
  - {{type: OWNED_BY, from: cert, to: dana}}
""")
    cmdb(tmp_path, "load", str(tmp_path / "owners.yaml"))

    cycle = cmdb(tmp_path, "expiry", "check", "--json")
    raised = {a["ci"]: a for a in cycle["actions"] if a["action"] == "raised"}
    # The leaf (10 days) goes to its owner; the test CA (30 days) has no owner: the default queue, no e-mail.
    assert set(raised) == {subject, "O=CMDB tests,CN=Scan Test CA"} and cycle["queued"] == 1
    assert raised[subject]["assignee"] == f"owner of {subject}"
    task_id = raised[subject]["task"]
    assert cmdb(tmp_path, "outbox", "deliver", "--json")["sent"] == 1
    [(rcpts, msg, *_)] = mail.take()
    assert rcpts == ["dana@example.com"]
    assert f"{subject} expires in 9 days" in msg["Subject"] and f"owner of {subject}" in msg.get_content()

    # The second round as the scheduler runs it: its scan job (a `cmdb scan` child), then the cycle.
    server.serve(renewed)
    with (tmp_path / "cmdb.yaml").open("a") as conf:
        conf.write(f"""\
scheduler:
  jobs:
    lab-scan: {{kind: scan, cron: "0 3 * * *", targets: [127.0.0.1],
                options: {{ports: "{server.port}", tls_ports: "{server.port}", no_dns: true}}}}
    expiry: {{kind: expiry_check, cron: "0 6 * * *"}}
""")
    runs = {r["job"]: r for r in map(json.loads, cmdb(tmp_path, "scheduler", "--once").splitlines())}
    assert runs["lab-scan"]["outcome"] == "ok" and runs["lab-scan"]["summary"]["outcomes"] == {"ok": 1}
    assert runs["expiry"]["outcome"] == "ok" and runs["expiry"]["summary"]["resolved"] >= 1
    new_fp = renewed.fingerprint(renewed.leaf)
    found = cmdb(tmp_path, "ci", "search", "--class", "Certificate", "--attr", f"fingerprint_sha256={new_fp}",
                 "--json")["items"]
    assert len(found) == 1
    task = cmdb(tmp_path, "tasks", "show", task_id, "--json")
    assert task["state"] == "resolved"
    assert task["transitions"][-1]["note"].startswith(
        f"renewed: certificate {subject} ({found[0]['id']}) valid until ")
    assert cmdb(tmp_path, "expiry", "check", "--json")["actions"] == []  # settled
