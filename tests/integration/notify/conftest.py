"""Real receivers on loopback for delivery tests: one aiosmtpd SMTP server and one HTTP webhook receiver
per test session.

The SMTP server offers STARTTLS (a certificate for 127.0.0.1 signed by a test CA) and AUTH (only after
TLS), and also takes plain unauthenticated mail, so every e-mail test shares it. The webhook receiver is
a ``http.server`` on a fixed port that can be taken down (its socket closed: connections are refused)
and brought back on the same port; it records every request, and counts repeats of an idempotency key.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_USER, SMTP_PASSWORD = "cmdb", "s3cret-smtp"


def make_ca_and_leaf(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """(CA file, leaf+key chain file, key file): a test CA and a server certificate for ``ip``."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Notify Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailSink:
    """What the SMTP server received."""

    host: str
    port: int
    ca_file: Path
    messages: list[tuple[list[str], EmailMessage, bool, bool]] = field(default_factory=list)  # rcpts, mail, tls, auth
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[tuple[list[str], EmailMessage, bool, bool]]:
        with self.lock:
            got, self.messages[:] = list(self.messages), []
        return got


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        mail = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        with self.sink.lock:
            self.sink.messages.append((list(envelope.rcpt_tos), mail, bool(session.ssl), session.authenticated))
        return "250 OK"


def _authenticate(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok)


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    ca_file, cert_file, key_file = make_ca_and_leaf(tmp_path_factory.mktemp("smtp-pki"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    sink = MailSink("127.0.0.1", free_port(), ca_file)
    controller = Controller(_Handler(sink), hostname=sink.host, port=sink.port, tls_context=context,
                            require_starttls=False, authenticator=_authenticate, auth_require_tls=True,
                            server_hostname="notify-test")
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """An HTTP receiver on a fixed loopback port that can go down (socket closed) and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Received] = []
        self.fail_next = 0  # answer 503 to this many requests (after recording them)
        self.delay = 0.0  # seconds to wait before answering (a slow receiver)
        self.lock = threading.Lock()
        self.server: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body))
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= failing
                time.sleep(receiver.delay)
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def take(self) -> list[Received]:
        with self.lock:
            got, self.requests[:] = list(self.requests), []
        return got


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def webhook(webhook_receiver: WebhookReceiver) -> Iterator[WebhookReceiver]:
    """The session's receiver, up and empty at the start of a test."""
    if webhook_receiver.server is None:
        webhook_receiver.start()
    webhook_receiver.take()
    webhook_receiver.fail_next = 0
    webhook_receiver.delay = 0.0
    yield webhook_receiver


@pytest.fixture
def mail(smtp_sink: MailSink) -> MailSink:
    smtp_sink.take()
    return smtp_sink
