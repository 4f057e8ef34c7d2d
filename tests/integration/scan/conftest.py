"""A scan lab on loopback: real TCP and TLS listeners on chosen 127.0.0.x addresses.

The lab uses 127.0.0.208/28 (hosts .209-.222), away from 127.0.0.1 where other test servers live.
Every (address, port) the tests scan is held by one of our sockets so nothing else can answer there:
a listener (banner, TLS, silent), a listener with a full accept queue (connects time out:
"filtered"), or a socket bound without listening (connects are refused: "closed"). A wildcard
bind by another process on one of these ports fails while we hold it.

Layout (ports are ephemeral ones free on every lab address):

=========  ===============  =================  ==========
address    banner_port      tls_port           closed_port
=========  ===============  =================  ==========
.209       SSH-2.0-test     TLS (leaf + CA)    refused
.210       refused          TLS (leaf + CA)    refused
.211       SSH-2.0-test     filtered           refused
.212       filtered         filtered           filtered
others     refused          refused            refused
=========  ===============  =================  ==========

``silent_port`` has a silent listener on every lab address that counts open connections and
accept times (for the concurrency and rate tests). The servers run on an asyncio loop in a thread
of the test process; the scan under test runs as a separate ``cmdb`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from loopback_ports import hold_common_port

NETWORK = "127.0.0.208/28"
ADDRESSES = [str(a) for a in ipaddress.ip_network(NETWORK).hosts()]
A_FULL, A_TLS_ONLY, A_PARTIAL, A_FILTERED = ADDRESSES[0], ADDRESSES[1], ADDRESSES[2], ADDRESSES[3]
BANNER = b"SSH-2.0-test\r\n"
LEAF_SANS = ["scan-test.example", "www.scan-test.example", A_FULL]


@dataclass
class TestPki:
    ca: x509.Certificate
    leaf: x509.Certificate
    chain_file: Path  # leaf then CA, as the TLS server serves them
    key_file: Path

    def pem(self, cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def fingerprint(self, cert: x509.Certificate) -> str:
        return cert.fingerprint(hashes.SHA256()).hex()


def make_pki(directory: Path, days: int = 5) -> TestPki:
    """A self-signed CA and a leaf it signs (SANs, ``days`` of validity), written as PEM files."""
    now = datetime.now(UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Scan Test CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CMDB tests")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in LEAF_SANS[:2]]
    sans.append(x509.IPAddress(ipaddress.ip_address(LEAF_SANS[2])))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scan-test.example")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain_file, key_file = directory / "chain.pem", directory / "leaf.key"
    chain_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return TestPki(ca, leaf, chain_file, key_file)




def fill_accept_queue(listener: socket.socket, address: str, port: int) -> list[socket.socket]:
    """Connections that fill a listen(0) queue, so later connects get no answer (a filtered port)."""
    listener.listen(0)
    fillers: list[socket.socket] = []
    for _ in range(8):
        c = socket.socket()
        c.settimeout(0.3)
        try:
            c.connect((address, port))
        except OSError:  # the queue is full: this SYN went unanswered
            c.close()
            return fillers
        fillers.append(c)
    raise RuntimeError(f"{address}:{port}: the accept queue never filled")


@dataclass
class SilentCounter:
    """Connections open at once on the silent listeners, and when each was accepted."""

    open_now: int = 0
    peak: int = 0
    accepted_at: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.open_now, self.peak, self.accepted_at = 0, 0, []


@dataclass
class ScanLab:
    network: str
    addresses: list[str]
    banner_port: int
    tls_port: int
    closed_port: int
    silent_port: int
    pki: TestPki
    silent: SilentCounter


class _Servers:
    """An asyncio loop in a thread serving the lab's listeners; ``stop`` closes everything."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="scan-lab", daemon=True)
        self.servers: list[asyncio.AbstractServer] = []
        self.thread.start()

    def serve(self, sock: socket.socket, handler: object, ssl_ctx: ssl.SSLContext | None = None) -> None:
        sock.listen(64)

        async def start() -> None:
            self.servers.append(await asyncio.start_server(handler, sock=sock, ssl=ssl_ctx,  # type: ignore[arg-type]
                                                           ssl_handshake_timeout=5 if ssl_ctx else None))

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=10)

    def stop(self) -> None:
        async def close_all() -> None:
            for s in self.servers:
                s.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float = 10) -> None:
    """Read until the client goes away (bounded), then close."""
    try:
        while await asyncio.wait_for(reader.read(4096), seconds):
            pass
    except (TimeoutError, OSError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


@pytest.fixture(scope="session")
def scan_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanLab]:
    pki = make_pki(tmp_path_factory.mktemp("scan-pki"))
    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ctx.load_cert_chain(pki.chain_file, pki.key_file)
    silent = SilentCounter()
    held: list[socket.socket] = []
    servers = _Servers()
    try:
        banner_port, banner_socks = hold_common_port(ADDRESSES)
        tls_port, tls_socks = hold_common_port(ADDRESSES)
        closed_port, closed_socks = hold_common_port(ADDRESSES)
        silent_port, silent_socks = hold_common_port(ADDRESSES)
        for group in (banner_socks, tls_socks, closed_socks, silent_socks):
            held.extend(group.values())

        async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(BANNER)
            with contextlib.suppress(OSError):
                await writer.drain()
            await _drain(reader, writer)

        async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            silent.open_now += 1
            silent.peak = max(silent.peak, silent.open_now)
            silent.accepted_at.append(time.monotonic())
            try:
                await _drain(reader, writer)
            finally:
                silent.open_now -= 1

        for a in (A_FULL, A_PARTIAL):
            servers.serve(banner_socks[a], banner)
        for a in (A_FULL, A_TLS_ONLY):
            servers.serve(tls_socks[a], _drain, tls_ctx)
        for a in ADDRESSES:
            servers.serve(silent_socks[a], quiet)
        for a, port, sock in ((A_PARTIAL, tls_port, tls_socks[A_PARTIAL]),
                              (A_FILTERED, banner_port, banner_socks[A_FILTERED]),
                              (A_FILTERED, tls_port, tls_socks[A_FILTERED]),
                              (A_FILTERED, closed_port, closed_socks[A_FILTERED])):
            held.extend(fill_accept_queue(sock, a, port))
        yield ScanLab(NETWORK, ADDRESSES, banner_port, tls_port, closed_port, silent_port, pki, silent)
    finally:
        servers.stop()
        for s in held:
            s.close()


@pytest.fixture()
def localhost_banner() -> Iterator[int]:
    """An SSH-banner listener on 127.0.0.1 (whose PTR, ``localhost``, comes from /etc/hosts: no DNS traffic)."""
    servers = _Servers()
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))

        async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(BANNER)
            await _drain(reader, writer)

        servers.serve(sock, banner)
        yield sock.getsockname()[1]
    finally:
        servers.stop()
        sock.close()
