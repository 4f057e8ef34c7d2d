"""Served certificate chains: how they are fetched, described and checked against the system store.

We inventory, we do not trust: the handshake uses ``CERT_NONE`` without hostname checking and
accepts legacy protocol versions and ciphers (``SECLEVEL=0``), so an expired, self-signed or
TLS 1.0-only server still hands over its certificate.

What chain we get: Python 3.11's public API exposes only the leaf (``getpeercert(binary_form=True)``).
CPython 3.10-3.12 carry a private ``_sslobj.get_unverified_chain()`` (public from 3.13 as
``SSLObject.get_unverified_chain()``) returning the certificates exactly as the server sent them,
leaf first; we use the public method, else the private one, else the leaf alone, and record which
in ``chain_source`` (``served_chain`` or ``leaf_only``). On this project's Python 3.11.7 with
OpenSSL 3.0 the private method is present, so the whole served chain is captured.

Whether the chain verifies against the system trust store is computed afterwards, offline
(``discovery.certificates.SystemTrust``, which also describes each certificate); no extra
connection is made for it.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

log = logging.getLogger("cmdb.discovery.scan")


def inventory_context() -> ssl.SSLContext:
    """A client context that completes a handshake with anything that speaks TLS, to read its chain."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:  # an OpenSSL without security levels: keep its defaults
        log.debug("cipher list ALL:@SECLEVEL=0 refused; using the defaults")
    return ctx


def served_chain(ssl_object: Any) -> tuple[list[bytes], str]:
    """The DER certificates the server sent, leaf first, and ``served_chain`` or ``leaf_only``."""
    getter = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)  # 3.10-3.12
    if getter is not None:
        try:
            chain = getter() or []
        except (ssl.SSLError, ValueError, AttributeError):
            chain = []
        ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for c in chain]
        if ders:
            return ders, "served_chain"
    leaf = ssl_object.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), "leaf_only"


def chain_capability() -> str:
    """``served_chain`` when this Python can return the served chain, else ``leaf_only`` (for run records)."""
    if hasattr(ssl.SSLObject, "get_unverified_chain"):
        return "served_chain"
    private = getattr(getattr(ssl, "_ssl", None), "_SSLSocket", None)
    return "served_chain" if hasattr(private, "get_unverified_chain") else "leaf_only"
