"""X.509 certificates as discovery describes them: PEM blocks, the Certificate CI's attributes, and
whether a chain verifies against the system trust store (offline, after the fact).

Shared by every method that finds certificates: the scan (served chains) and SSH (files on a host).
A chain is checked with ``cryptography``'s Web PKI verifier (chain, validity dates and key usage; the
host name checked is the leaf's own first SAN, since discovery has no name a client would have asked
for). A leaf without a SAN does not verify, as in browsers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"


def der_to_pem(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der).strip() + "\n"


def pem_blocks(text: str) -> list[str]:
    """Every PEM certificate block in ``text``, in order."""
    blocks: list[str] = []
    start = text.find(PEM_BEGIN)
    while start != -1:
        end = text.find(PEM_END, start)
        if end == -1:
            break
        blocks.append(text[start:end + len(PEM_END)] + "\n")
        start = text.find(PEM_BEGIN, end)
    return blocks


def fingerprint_sha256(der: bytes) -> str:
    """Lower-case hex SHA-256 of the DER certificate, no separators (the Certificate identity key)."""
    return hashlib.sha256(der).hexdigest()


def describe_certificate(pem: str) -> dict[str, Any]:
    """The Certificate attributes of one PEM certificate (pure; raises ValueError when unparseable)."""
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    der = cert.public_bytes(Encoding.DER)
    sans = subject_alt_names(cert)
    subject = cert.subject.rfc4514_string()
    fp = fingerprint_sha256(der)
    serial = cert.serial_number
    serial_hex = format(abs(serial), "X")
    serial_hex = ("-" if serial < 0 else "") + serial_hex.rjust(len(serial_hex) + len(serial_hex) % 2, "0")
    return {
        # Certificate.subject is required: a subject-less certificate is named by its first SAN or fingerprint.
        "subject": subject or (sans[0] if sans else f"sha256:{fp[:16]}"),
        "sans": sans,
        "issuer": cert.issuer.rfc4514_string(),
        "serial": serial_hex,
        "fingerprint_sha256": fp,
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
    }


def subject_alt_names(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses as plain strings; other kinds with a prefix (``email:``, ``URI:``)."""
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    san = ext.value
    assert isinstance(san, x509.SubjectAlternativeName)
    out: list[str] = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    out += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    out += [f"email:{e}" for e in san.get_values_for_type(x509.RFC822Name)]
    out += [f"URI:{u}" for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    return out


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass
class TrustVerdict:
    trusted: bool | None  # None: no trust store to check against
    reason: str


class SystemTrust:
    """The system's CA bundle loaded once per scan; ``check`` verifies a served chain offline."""

    def __init__(self, roots: list[x509.Certificate]) -> None:
        from cryptography.x509.verification import Store

        self.roots = roots
        self._store = Store(roots) if roots else None

    @classmethod
    def load(cls, cafile: str | None = None) -> SystemTrust:
        """The bundle named by ``cafile``, else OpenSSL's default (honours SSL_CERT_FILE / SSL_CERT_DIR)."""
        paths = ssl.get_default_verify_paths()
        files: list[Path] = []
        if cafile:
            files = [Path(cafile)]
        elif paths.cafile and Path(paths.cafile).is_file():
            files = [Path(paths.cafile)]
        elif paths.capath and Path(paths.capath).is_dir():
            files = sorted(p for p in Path(paths.capath).iterdir() if p.suffix in (".pem", ".crt"))
        roots: list[x509.Certificate] = []
        seen: set[bytes] = set()
        for f in files:
            try:
                text = f.read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            for block in pem_blocks(text):
                try:
                    with warnings.catch_warnings():  # old roots with non-positive serials still anchor chains
                        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                        cert = x509.load_pem_x509_certificate(block.encode("ascii"))
                except ValueError:
                    continue
                fp = cert.fingerprint(hashes.SHA256())
                if fp not in seen:
                    seen.add(fp)
                    roots.append(cert)
        return cls(roots)

    def check(self, chain_pem: list[str], at: datetime | None = None) -> TrustVerdict:
        """Whether ``chain_pem`` (leaf first) chains to a system root, valid ``at`` (default now), for the
        leaf's first SAN."""
        from cryptography.x509 import DNSName, IPAddress
        from cryptography.x509.verification import PolicyBuilder, VerificationError

        if self._store is None:
            return TrustVerdict(None, "no system trust store found")
        if not chain_pem:
            return TrustVerdict(None, "no certificate")
        try:
            certs = [x509.load_pem_x509_certificate(p.encode("ascii")) for p in chain_pem]
        except ValueError as exc:
            return TrustVerdict(False, f"unparseable certificate: {exc}")
        names = subject_alt_names(certs[0])
        subject: DNSName | IPAddress | None = None
        for name in names:
            try:
                subject = IPAddress(ipaddress.ip_address(name))
            except ValueError:
                if ":" not in name:  # a wildcard is checked with a name it covers
                    subject = DNSName("wildcard-check." + name[2:] if name.startswith("*.") else name)
            if subject is not None:
                break
        if subject is None:
            return TrustVerdict(False, "the leaf has no DNS or IP subjectAltName")
        # A self-signed certificate the server sends along is a root; trust comes from the store, not the wire.
        intermediates = [c for c in certs[1:] if c.issuer != c.subject]
        try:
            builder = PolicyBuilder().store(self._store)
            if at is not None:
                builder = builder.time(at)
            verifier = builder.build_server_verifier(subject)
            verifier.verify(certs[0], intermediates)
        except (VerificationError, ValueError) as exc:
            return TrustVerdict(False, f"does not verify against the system store: {exc}")
        return TrustVerdict(True, "chains to a system root")
