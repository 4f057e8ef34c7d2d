"""nmap XML (``nmap -oX``) into the CMDB, in the same shape as our own scan so the two meet.

``read_nmap`` parses with defusedxml: a file declaring entities (the "billion laughs" bomb, an
external entity) is refused, never expanded. ``transform_nmap`` is pure: one batch per host that
was up with at least one open port (source ``import:nmap``, scope ``<address>/32``, partial: a
file saying nothing about a port ages nothing), shaped like ``discovery/scan/transform.py``:

- ``Host``: ``management_ip`` and ``ip_addresses`` (the scanned address), ``hostname``/``fqdn``
  from the PTR (else user-given) name, ``mac_addresses`` and ``vendor`` (the MAC's vendor, the
  best nmap knows of the box) from a MAC address, ``os`` from the most accurate OS match;
- ``IPAddress`` with HAS_ADDRESS, like the scan;
- one ``ServiceEndpoint`` per open port (address, port, protocol, service; ``product`` and
  ``version`` from version detection; ``tls`` when nmap saw an SSL tunnel) with RUNS_ON the host;
- a ``Certificate`` per ``ssl-cert`` script result, described from its PEM by the scan's own
  ``describe_certificate`` (so the fingerprint, the strongest identity, is the same), with
  ServiceEndpoint USES_CERTIFICATE Certificate (``chain_position`` 0): ``cmdb impact expiry``
  sees its ``not_after``.

The same host scanned by ``cmdb scan`` and imported from nmap is one CI: both record the address
as ``management_ip`` and the endpoints by (address, protocol, port).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse as safe_parse

from cmdb.batch import Batch, CIRecord, RelRecord
from cmdb.errors import BadInputError
from discovery.certificates import describe_certificate
from discovery.scan.transform import names_of

SOURCE = "import:nmap"
HTTP_OVER_TLS = {"http": "https", "unknown": "tls", "imap": "imaps", "pop3": "pop3s", "smtp": "smtps",
                 "ldap": "ldaps", "ftp": "ftps"}


@dataclass
class NmapPort:
    port: int
    protocol: str
    state: str
    service: str | None = None
    product: str | None = None
    version: str | None = None
    tls: bool = False
    cert_pem: str | None = None


@dataclass
class NmapHost:
    address: str
    state: str
    mac: str | None = None
    mac_vendor: str | None = None
    hostnames: list[tuple[str, str]] = field(default_factory=list)  # (name, type: PTR | user)
    os: str | None = None
    os_accuracy: int = 0
    ports: list[NmapPort] = field(default_factory=list)


def read_nmap(path: Path) -> list[NmapHost]:
    """The hosts of an nmap XML file; a malformed or hostile file is a BadInputError naming it."""
    try:
        tree = safe_parse(str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadInputError(f"{path}: refused: the file declares XML entities ({type(exc).__name__}), which nmap "
                            "never writes; an entity-expansion bomb or external reference is not read") from None
    except ParseError as exc:
        line, col = exc.position
        problem = str(exc).split(":", 1)[0]
        raise BadInputError(f"{path}:{line}: not valid XML (column {col + 1}): {problem}") from None
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror}") from None
    root = tree.getroot()
    if root is None or root.tag != "nmaprun":
        raise BadInputError(f"{path}: not nmap XML (the root element is <{getattr(root, 'tag', '')}>, not <nmaprun>); "
                            "write it with nmap -oX")
    return [h for h in (_host(e) for e in root.iter("host")) if h is not None]


def _host(e: Element) -> NmapHost | None:
    address = mac = vendor = None
    for a in e.findall("address"):
        kind = a.get("addrtype")
        if kind in ("ipv4", "ipv6") and address is None:
            address = a.get("addr")
        elif kind == "mac":
            mac, vendor = a.get("addr"), a.get("vendor")
    if address is None:
        return None
    status = e.find("status")
    host = NmapHost(address, status.get("state", "unknown") if status is not None else "unknown", mac, vendor)
    for h in e.findall("hostnames/hostname"):
        if h.get("name"):
            host.hostnames.append((str(h.get("name")), h.get("type") or "user"))
    for m in e.findall("os/osmatch"):
        accuracy = int(m.get("accuracy") or 0)
        if accuracy > host.os_accuracy and m.get("name"):
            host.os, host.os_accuracy = m.get("name"), accuracy
    for p in e.findall("ports/port"):
        state = p.find("state")
        port = NmapPort(int(p.get("portid") or 0), p.get("protocol") or "tcp",
                        state.get("state", "unknown") if state is not None else "unknown")
        svc = p.find("service")
        if svc is not None:
            port.service = svc.get("name")
            port.product = svc.get("product")
            port.version = " ".join(v for v in (svc.get("version"), svc.get("extrainfo")) if v) or None
            port.tls = svc.get("tunnel") == "ssl"
        for script in p.findall("script"):
            if script.get("id") == "ssl-cert":
                port.tls = True
                pem = next((el.text for el in script.iter("elem") if el.get("key") == "pem"), None)
                port.cert_pem = pem.strip() if pem else None
        host.ports.append(port)
    return host


@dataclass
class NmapReading:
    batches: list[Batch]
    notes: list[str]


def transform_nmap(hosts: list[NmapHost], origin: str = "nmap") -> NmapReading:
    """One batch per host with an open port (pure)."""
    batches: list[Batch] = []
    notes: list[str] = []
    for host in hosts:
        opened = [p for p in host.ports if p.state == "open"]
        if host.state != "up" or not opened:
            continue
        batches.append(_host_batch(host, opened, origin, notes))
    return NmapReading(batches, notes)


def _host_batch(host: NmapHost, opened: list[NmapPort], origin: str, notes: list[str]) -> Batch:
    address = host.address
    ptr = next((n for n, t in host.hostnames if t == "PTR"), None)
    name = ptr or next((n for n, _ in host.hostnames), None)
    dns_name, hostname, fqdn = names_of({"ptr": name})
    scope = f"{address}/128" if ":" in address else f"{address}/32"
    batch = Batch(source=SOURCE, scope=scope, complete=False, origin=f"{origin} ({address})")
    attrs: dict[str, Any] = {"management_ip": address, "ip_addresses": [address]}
    if hostname:
        attrs["hostname"] = hostname
    if fqdn:
        attrs["fqdn"] = fqdn
    if host.mac:
        attrs["mac_addresses"] = [host.mac]
        if host.mac_vendor:
            attrs["vendor"] = host.mac_vendor
    if host.os:
        attrs["os"] = host.os
    batch.cis.append(CIRecord("Host", attrs, ref="host"))
    ip: dict[str, Any] = {"address": address}
    if dns_name:
        ip["dns_name"] = dns_name
    batch.cis.append(CIRecord("IPAddress", ip, ref="ip"))
    batch.rels.append(RelRecord("HAS_ADDRESS", "host", "ip"))
    for p in sorted(opened, key=lambda p: (p.protocol, p.port)):
        if p.protocol not in ("tcp", "udp"):
            continue
        ref = f"ep:{p.protocol}:{p.port}"
        ep: dict[str, Any] = {"address": address, "port": p.port, "protocol": p.protocol}
        service = p.service if p.service and p.service != "unknown" else None
        if p.tls:
            service = HTTP_OVER_TLS.get(p.service or "unknown", service)
        if service:
            ep["service"] = service
        if p.product:
            ep["product"] = p.product
        if p.version:
            ep["version"] = p.version
        if p.tls:
            ep["tls"] = True
        if hostname:
            ep["host_name"] = hostname
        batch.cis.append(CIRecord("ServiceEndpoint", ep, ref=ref))
        batch.rels.append(RelRecord("RUNS_ON", ref, "host"))
        if p.cert_pem:
            try:
                cert = describe_certificate(p.cert_pem)
            except ValueError as exc:
                notes.append(f"{address}:{p.port}: the ssl-cert PEM does not parse ({exc}); certificate skipped")
                continue
            cref = f"cert:{cert['fingerprint_sha256']}"
            if all(c.ref != cref for c in batch.cis):
                batch.cis.append(CIRecord("Certificate", cert, ref=cref))
            batch.rels.append(RelRecord("USES_CERTIFICATE", ref, cref, {"chain_position": 0}))
    for i, c in enumerate(batch.cis):
        c.index = i
    for i, r in enumerate(batch.rels):
        r.index = i
    return batch


def nmap_batches(paths: list[Path]) -> Iterator[tuple[Path, NmapReading]]:
    """Every file read (all before anything is written, so a bad file stops the import whole)."""
    readings = [(path, transform_nmap(read_nmap(path), str(path))) for path in paths]
    yield from readings
