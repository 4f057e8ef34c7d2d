"""BER encoding of SNMPv2c requests and decoding of responses: just the subset SNMP uses.

Why not pysnmp for v2c: its pipeline (pyasn1 objects, MIB-aware var-binds, the v3 message
processing model even for v2c) costs about 130 µs per var-bind; a GETBULK response decoded here
costs a few µs per var-bind, which is what lets a full walk keep pace with net-snmp's C tools.
pysnmp stays in charge of SNMPv3 (USM authentication and privacy), see ``client.py``.

Values are decoded to plain Python: INTEGER, Counter32/64, Gauge32 and TimeTicks to ``int``;
OCTET STRING, IpAddress and Opaque to ``bytes``; OBJECT IDENTIFIER to a tuple of ints; NULL and
the exceptions (noSuchObject, noSuchInstance, endOfMibView) to ``None`` (the tag tells them apart).
"""

from __future__ import annotations

from collections.abc import Sequence

from cmdb.errors import CmdbError
from discovery.snmp.oids import Oid

TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_IP_ADDRESS = 0x40
TAG_COUNTER32 = 0x41
TAG_GAUGE32 = 0x42
TAG_TIMETICKS = 0x43
TAG_OPAQUE = 0x44
TAG_COUNTER64 = 0x46
TAG_NO_SUCH_OBJECT = 0x80
TAG_NO_SUCH_INSTANCE = 0x81
TAG_END_OF_MIB_VIEW = 0x82
EXCEPTION_TAGS = frozenset({TAG_NO_SUCH_OBJECT, TAG_NO_SUCH_INSTANCE, TAG_END_OF_MIB_VIEW})

PDU_GET = 0xA0
PDU_GET_NEXT = 0xA1
PDU_RESPONSE = 0xA2
PDU_GET_BULK = 0xA5
PDU_REPORT = 0xA8

VERSION_2C = 1

Value = int | bytes | Oid | None
Varbind = tuple[Oid, int, Value]  # (name, BER tag of the value, decoded value)

_UNSIGNED_TAGS = frozenset({TAG_COUNTER32, TAG_GAUGE32, TAG_TIMETICKS, TAG_COUNTER64})
_BYTES_TAGS = frozenset({TAG_OCTET_STRING, TAG_IP_ADDRESS, TAG_OPAQUE})


class BerError(CmdbError):
    """A datagram that is not a well-formed SNMP message."""


# ---------------------------------------------------------------------------------------------- encoding


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def encode_integer(value: int) -> bytes:
    return _tlv(TAG_INTEGER, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def encode_oid(value: Oid) -> bytes:
    if len(value) < 2 or value[0] > 2 or (value[0] < 2 and value[1] >= 40):
        raise BerError(f"cannot encode OID {'.'.join(map(str, value))}: it needs at least two valid arcs")
    out = bytearray()
    for arc in (value[0] * 40 + value[1], *value[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = bytearray()
        while arc:
            chunk.append((arc & 0x7F) | 0x80)
            arc >>= 7
        chunk[0] &= 0x7F
        out += chunk[::-1]
    return _tlv(TAG_OID, bytes(out))


def encode_request(pdu_type: int, request_id: int, community: bytes, oids: Sequence[Oid],
                   non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A v2c GET / GETNEXT / GETBULK message (for GETBULK the error fields carry the bulk parameters)."""
    null = b"\x05\x00"
    varbinds = b"".join(_tlv(TAG_SEQUENCE, encode_oid(o) + null) for o in oids)
    pdu = _tlv(pdu_type, encode_integer(request_id) + encode_integer(non_repeaters)
               + encode_integer(max_repetitions) + _tlv(TAG_SEQUENCE, varbinds))
    return _tlv(TAG_SEQUENCE, encode_integer(VERSION_2C) + _tlv(TAG_OCTET_STRING, community) + pdu)


def encode_value(tag: int, value: Value) -> bytes:
    """One value as BER (used by tests that play an agent)."""
    if tag == TAG_OID:
        assert isinstance(value, tuple)
        return encode_oid(value)
    if tag in (TAG_NULL, *EXCEPTION_TAGS):
        return bytes((tag, 0))
    if isinstance(value, bytes):
        return _tlv(tag, value)
    assert isinstance(value, int)
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit, which unsigned types keep 0
    return _tlv(tag, value.to_bytes(size, "big", signed=tag == TAG_INTEGER))


def encode_response(request_id: int, community: bytes, varbinds: Sequence[Varbind],
                    error_status: int = 0, error_index: int = 0) -> bytes:
    """A v2c Response message (used by tests that play an agent)."""
    body = b"".join(_tlv(TAG_SEQUENCE, encode_oid(o) + encode_value(t, v)) for o, t, v in varbinds)
    pdu = _tlv(PDU_RESPONSE, encode_integer(request_id) + encode_integer(error_status)
               + encode_integer(error_index) + _tlv(TAG_SEQUENCE, body))
    return _tlv(TAG_SEQUENCE, encode_integer(VERSION_2C) + _tlv(TAG_OCTET_STRING, community) + pdu)


# ---------------------------------------------------------------------------------------------- decoding


def decode_oid(raw: bytes) -> Oid:
    if not raw:
        raise BerError("empty OBJECT IDENTIFIER")
    first = raw[0]
    if raw.isascii():  # every arc fits in one byte: the common case, done in C
        head = (first // 40, first % 40) if first < 80 else (2, first - 80)
        return head + tuple(raw[1:])
    arcs: list[int] = []
    acc = 0
    for byte in raw:
        acc = (acc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(acc)
            acc = 0
    if raw[-1] & 0x80:
        raise BerError("truncated OBJECT IDENTIFIER")
    lead = arcs[0]
    head = (lead // 40, lead % 40) if lead < 80 else (2, lead - 80)
    return head + tuple(arcs[1:])


def _header(data: bytes, pos: int, expect: int, what: str) -> tuple[int, int]:
    """(start, end) of the body of the TLV at ``pos``, which must have tag ``expect``."""
    if data[pos] != expect:
        raise BerError(f"expected {what} (tag 0x{expect:02x}) at byte {pos}, found tag 0x{data[pos]:02x}")
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    end = pos + n
    if end > len(data):
        raise BerError(f"{what} at byte {pos} runs past the end of the datagram")
    return pos, end


def _integer(data: bytes, pos: int) -> tuple[int, int]:
    start, end = _header(data, pos, TAG_INTEGER, "INTEGER")
    return int.from_bytes(data[start:end], "big", signed=True), end


def decode_message(data: bytes) -> tuple[int, bytes, int, int, int, int, list[Varbind]]:
    """(version, community, pdu tag, request id, error status, error index, varbinds) of a v1/v2c message."""
    try:
        _, end = _header(data, 0, TAG_SEQUENCE, "message")
        version, pos = _integer(data, 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F))
        cstart, cend = _header(data, pos, TAG_OCTET_STRING, "community")
        community = data[cstart:cend]
        pdu_tag = data[cend]
        pstart, _ = _header(data, cend, pdu_tag, "PDU")
        request_id, pos = _integer(data, pstart)
        error_status, pos = _integer(data, pos)
        error_index, pos = _integer(data, pos)
        pos, end = _header(data, pos, TAG_SEQUENCE, "varbind list")
        return version, community, pdu_tag, request_id, error_status, error_index, _varbinds(data, pos, end)
    except IndexError:
        raise BerError("truncated SNMP message") from None


def _varbinds(data: bytes, pos: int, end: int) -> list[Varbind]:
    out: list[Varbind] = []
    append = out.append
    unsigned, as_bytes = _UNSIGNED_TAGS, _BYTES_TAGS
    from_bytes = int.from_bytes
    while pos < end:
        # SEQUENCE { name OBJECT IDENTIFIER, value ANY }; the header walk is inlined: this loop is the hot path
        if data[pos] != TAG_SEQUENCE:
            raise BerError(f"expected a varbind at byte {pos}")
        n = data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = from_bytes(data[pos:pos + k], "big")
            pos += k
        vb_end = pos + n
        if data[pos] != TAG_OID:
            raise BerError(f"expected an OBJECT IDENTIFIER at byte {pos}")
        n = data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = from_bytes(data[pos:pos + k], "big")
            pos += k
        raw = data[pos:pos + n]
        if raw.isascii() and raw and raw[0] == 43:  # 1.3.x with one-byte arcs
            name: Oid = (1, 3, *raw[1:])
        else:
            name = decode_oid(raw)
        pos += n
        tag = data[pos]
        n = data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = from_bytes(data[pos:pos + k], "big")
            pos += k
        if pos + n != vb_end or vb_end > end:
            raise BerError(f"varbind at byte {pos} has inconsistent lengths")
        value: Value
        if tag in as_bytes:
            value = data[pos:vb_end]
        elif tag == TAG_INTEGER:
            value = from_bytes(data[pos:vb_end], "big", signed=True)
        elif tag in unsigned:
            value = from_bytes(data[pos:vb_end], "big")
        elif tag == TAG_OID:
            value = decode_oid(data[pos:vb_end])
        else:  # NULL, noSuchObject, noSuchInstance, endOfMibView, or an unknown type kept as None
            value = None
        append((name, tag, value))
        pos = vb_end
    return out
