"""The ``.snmprec`` text format (``OID|TYPE|VALUE`` per line) shared with snmpsim.

One format serves three uses: recorded walks for the pure transform tests, the data that
snmpsim agents serve in the integration tests and the benchmark, and ``record`` output of a real
agent. TYPE is the BER tag in decimal (2 INTEGER, 4 OCTET STRING, 5 NULL, 6 OID, 64 IpAddress,
65 Counter32, 66 Gauge32, 67 TimeTicks, 68 Opaque, 70 Counter64); a trailing ``x`` means the
value is written in hex.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from cmdb.errors import BadInputError
from discovery.snmp.ber import (
    TAG_COUNTER32,
    TAG_COUNTER64,
    TAG_GAUGE32,
    TAG_INTEGER,
    TAG_IP_ADDRESS,
    TAG_NULL,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_OPAQUE,
    TAG_TIMETICKS,
    Value,
    Varbind,
)
from discovery.snmp.oids import dotted, oid

_INT_TAGS = frozenset({TAG_INTEGER, TAG_COUNTER32, TAG_GAUGE32, TAG_TIMETICKS, TAG_COUNTER64})
_KNOWN = _INT_TAGS | {TAG_OCTET_STRING, TAG_NULL, TAG_OID, TAG_IP_ADDRESS, TAG_OPAQUE}


def parse_line(line: str, where: str = "snmprec") -> Varbind | None:
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("#"):
        return None
    try:
        name_text, type_text, value_text = line.split("|", 2)
        hex_form = type_text.endswith("x")
        tag = int(type_text.rstrip("x"))
        name = oid(name_text)
    except ValueError:
        raise BadInputError(f"{where}: expected OID|TYPE|VALUE, got {line[:80]!r}") from None
    if tag not in _KNOWN:
        raise BadInputError(f"{where}: unknown type {type_text!r}")
    value: Value
    try:
        if hex_form:
            raw = bytes.fromhex(value_text)
            value = int.from_bytes(raw, "big", signed=tag == TAG_INTEGER) if tag in _INT_TAGS else raw
        elif tag in _INT_TAGS:
            value = int(value_text)
        elif tag == TAG_OID:
            value = oid(value_text)
        elif tag == TAG_IP_ADDRESS:
            value = ipaddress.IPv4Address(value_text).packed
        elif tag == TAG_NULL:
            value = None
        else:
            value = value_text.encode("utf-8")
    except ValueError:
        raise BadInputError(f"{where}: bad value for type {type_text}: {value_text[:80]!r}") from None
    return name, tag, value


def parse(text: str, where: str = "snmprec") -> list[Varbind]:
    """Every record of ``text``, sorted by OID."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        vb = parse_line(line, f"{where}:{n}")
        if vb is not None:
            out.append(vb)
    out.sort(key=lambda vb: vb[0])
    return out


def load(path: Path | str) -> list[Varbind]:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), str(path))


def format_varbind(vb: Varbind) -> str:
    name, tag, value = vb
    if tag == TAG_OID:
        assert isinstance(value, tuple)
        return f"{dotted(name)}|6|{dotted(value)}"
    if tag == TAG_IP_ADDRESS and isinstance(value, bytes) and len(value) == 4:
        return f"{dotted(name)}|64|{ipaddress.IPv4Address(value)}"
    if isinstance(value, bytes):
        printable = all(32 <= b < 127 for b in value)
        return f"{dotted(name)}|{tag}|{value.decode('ascii')}" if printable else f"{dotted(name)}|{tag}x|{value.hex()}"
    if value is None:
        return f"{dotted(name)}|5|"
    return f"{dotted(name)}|{tag}|{value}"


def dumps(varbinds: Iterable[Varbind]) -> str:
    return "".join(format_varbind(vb) + "\n" for vb in sorted(varbinds, key=lambda vb: vb[0]))
