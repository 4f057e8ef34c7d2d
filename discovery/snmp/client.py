"""SNMP sessions and the GETBULK walker: the only module of SNMP discovery that does I/O.

Two session kinds offer the same two calls (``get`` and ``get_bulk``):

- ``V2cSession``: our own lean v2c client over an asyncio UDP socket (``ber.py`` codes the
  messages): request ids matched to waiting requests, retransmission of the same request on
  timeout, the community checked on every response;
- ``V3Session``: pysnmp 7's asyncio API for SNMPv3 with USM (auth/priv), ``lookupMib=False``.

``walk`` reads a set of table columns side by side (one GETBULK carries every column that is
still going) and stops each column on endOfMibView or when it leaves its subtree; an agent that
answers with a non-increasing OID is an error, never an endless loop.

Errors (``SnmpError`` and subclasses) carry the ``Outcome`` they stand for; they never quote a
community or key, and they name the target.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from cmdb.errors import CmdbError
from discovery.credentials import SnmpProfile
from discovery.outcomes import Outcome
from discovery.snmp.ber import (
    EXCEPTION_TAGS,
    PDU_GET,
    PDU_GET_BULK,
    PDU_RESPONSE,
    TAG_END_OF_MIB_VIEW,
    VERSION_2C,
    BerError,
    Varbind,
    decode_message,
    encode_request,
)
from discovery.snmp.oids import Oid, dotted

log = logging.getLogger("cmdb.discovery.snmp")

ERROR_STATUS = {1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess",
                7: "wrongType", 8: "wrongLength", 9: "wrongEncoding", 10: "wrongValue", 11: "noCreation",
                12: "inconsistentValue", 13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
                16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}


class SnmpError(CmdbError):
    """An SNMP exchange failed; ``outcome`` says how, for the run record."""

    outcome = Outcome.ERROR


class SnmpTimeout(SnmpError):
    outcome = Outcome.TIMEOUT


class SnmpAuthError(SnmpError):
    outcome = Outcome.AUTH_FAILED


class SnmpRefused(SnmpError):
    outcome = Outcome.REFUSED


class SnmpUnreachable(SnmpError):
    outcome = Outcome.UNREACHABLE


class SnmpProtocolError(SnmpError):
    outcome = Outcome.PARSE_ERROR


class SnmpTooBig(SnmpProtocolError):
    """The answer would not fit in one message: ask for fewer rows."""


@dataclass(frozen=True)
class SnmpSettings:
    """How hard to try: seconds per attempt, retransmissions, rows per GETBULK."""

    timeout: float = 2.0
    retries: int = 1
    max_repetitions: int = 25
    max_varbinds_per_walk: int = 200_000  # a bound on what one walk may return, against runaway agents


class SnmpSession(Protocol):
    """One agent spoken to with one credential profile."""

    target: str

    async def get(self, oids: Sequence[Oid]) -> list[Varbind]: ...

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[Varbind]: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------------------------------ v2c (own client)


class _V2cProtocol(asyncio.DatagramProtocol):
    """Routes each response datagram to the request waiting for its request id."""

    def __init__(self, community: bytes) -> None:
        self.community = community
        self.waiting: dict[int, asyncio.Future[tuple[int, int, list[Varbind]]]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            version, community, pdu, request_id, status, index, varbinds = decode_message(data)
        except BerError as exc:
            log.debug("snmp: dropped a malformed datagram from %s: %s", addr[0], exc)
            return
        fut = self.waiting.get(request_id)
        if fut is None or fut.done():
            return  # a late answer to a retransmitted request that was already answered
        if version != VERSION_2C or pdu != PDU_RESPONSE or community != self.community:
            log.debug("snmp: dropped a datagram from %s that is no v2c response to us", addr[0])
            return
        fut.set_result((status, index, varbinds))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on the connected socket: port unreachable, host/network unreachable
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(exc)


class V2cSession:
    """SNMPv2c with our own codec; one connected UDP socket per session."""

    def __init__(self, target: str, port: int, community: str, settings: SnmpSettings) -> None:
        self.target = target
        self.port = port
        self.settings = settings
        self._protocol = _V2cProtocol(community.encode("utf-8"))
        self._next_id = secrets.randbelow(1 << 30)

    async def open(self) -> V2cSession:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self._protocol, remote_addr=(self.target, self.port))
        except OSError as exc:
            raise _os_error(self.target, self.port, exc) from exc
        return self

    def close(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()

    async def get(self, oids: Sequence[Oid]) -> list[Varbind]:
        return await self._request(PDU_GET, oids, 0)

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[Varbind]:
        return await self._request(PDU_GET_BULK, oids, max_repetitions)

    async def _request(self, pdu_type: int, oids: Sequence[Oid], max_repetitions: int) -> list[Varbind]:
        transport = self._protocol.transport
        if transport is None:
            raise SnmpError(f"SNMP session to {self.target} is not open")
        self._next_id = (self._next_id + 1) & 0x7FFFFFFF
        request_id = self._next_id
        message = encode_request(pdu_type, request_id, self._protocol.community, oids, 0, max_repetitions)
        fut: asyncio.Future[tuple[int, int, list[Varbind]]] = asyncio.get_running_loop().create_future()
        self._protocol.waiting[request_id] = fut
        try:
            for _attempt in range(self.settings.retries + 1):
                transport.sendto(message)
                try:
                    status, index, varbinds = await asyncio.wait_for(asyncio.shield(fut), self.settings.timeout)
                except TimeoutError:
                    continue
                except OSError as exc:
                    raise _os_error(self.target, self.port, exc) from exc
                if status:
                    raise _status_error(self.target, status, index, oids)
                return varbinds
        finally:
            del self._protocol.waiting[request_id]
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # an ICMP error that came after we stopped waiting: retrieved, not warned about
        raise SnmpTimeout(f"{self.target}:{self.port}: no SNMP answer within {self.settings.timeout:g} s "
                          f"({self.settings.retries + 1} attempts)")


def _os_error(target: str, port: int, exc: OSError) -> SnmpError:
    if isinstance(exc, ConnectionRefusedError):
        return SnmpRefused(f"{target}:{port}: nothing listens for SNMP there (ICMP port unreachable); "
                           "check the agent is running and the port")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return SnmpUnreachable(f"{target}:{port}: unreachable ({exc.strerror}); check routing to the target")
    return SnmpError(f"{target}:{port}: socket error {exc.strerror or exc}")


def _status_error(target: str, status: int, index: int, oids: Sequence[Oid]) -> SnmpError:
    name = ERROR_STATUS.get(status, f"error {status}")
    where = f" at {dotted(oids[index - 1])}" if 0 < index <= len(oids) else ""
    if status == 1:
        return SnmpTooBig(f"{target}: the agent answered tooBig; fewer repetitions are needed")
    if name in ("authorizationError", "noAccess"):
        return SnmpAuthError(f"{target}: the agent refused access ({name}{where}); check the profile's view")
    return SnmpProtocolError(f"{target}: the agent answered {name}{where}")


# ------------------------------------------------------------------------------------------ v3 (pysnmp)

_AUTH = {"md5": "usmHMACMD5AuthProtocol", "sha": "usmHMACSHAAuthProtocol", "sha224": "usmHMAC128SHA224AuthProtocol",
         "sha256": "usmHMAC192SHA256AuthProtocol", "sha384": "usmHMAC256SHA384AuthProtocol",
         "sha512": "usmHMAC384SHA512AuthProtocol"}
_PRIV = {"des": "usmDESPrivProtocol", "3des": "usm3DESEDEPrivProtocol", "aes": "usmAesCfb128Protocol",
         "aes128": "usmAesCfb128Protocol", "aes192": "usmAesCfb192Protocol", "aes256": "usmAesCfb256Protocol"}
_AUTH_INDICATIONS = ("UnknownUserName", "WrongDigest", "DecryptionError", "UnsupportedSecurityLevel",
                     "AuthenticationFailure", "AuthenticationError", "UnknownSecurityName", "NoAuthentication",
                     "UnknownEngineID", "NotInTimeWindow")


class EnginePool:
    """pysnmp SNMP engines, one per v3 profile and event loop, shared by that profile's sessions.

    An engine costs ~70 ms of CPU to build, and it caches every agent's engine id and clock;
    one per profile (never per user name) keeps two profiles of one user name, with different
    keys, apart. ``close`` shuts their sockets.
    """

    def __init__(self) -> None:
        self._engines: dict[str, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def get(self, profile: SnmpProfile) -> Any:
        from pysnmp.hlapi.v3arch import asyncio as hl

        loop = asyncio.get_running_loop()
        known = self._engines.get(profile.name)
        if known is not None and known[0] is loop:
            return known[1]
        if known is not None:
            _close_engine(known[1])
        engine = hl.SnmpEngine()
        self._engines[profile.name] = (loop, engine)
        return engine

    def close(self) -> None:
        for _, engine in self._engines.values():
            _close_engine(engine)
        self._engines.clear()


def _close_engine(engine: Any) -> None:
    try:
        engine.close_dispatcher()
    except Exception as exc:  # a dispatcher whose event loop is already gone
        log.debug("snmp: closing an SNMPv3 engine: %s", type(exc).__name__)


class V3Session:
    """SNMPv3 (USM) through pysnmp; its engine comes from ``engines`` (shared) or is its own."""

    def __init__(self, target: str, profile: SnmpProfile, settings: SnmpSettings,
                 engines: EnginePool | None = None) -> None:
        self.target = target
        self.profile = profile
        self.settings = settings
        self._engines = engines
        self._engine: Any = None
        self._auth: Any = None
        self._transport: Any = None
        self._context: Any = None

    async def open(self) -> V3Session:
        from pysnmp.hlapi.v3arch import asyncio as hl

        prof = self.profile
        assert prof.user is not None
        kwargs: dict[str, Any] = {}
        if prof.auth_key is not None:
            kwargs["authKey"] = prof.auth_key.resolve().reveal()
            kwargs["authProtocol"] = getattr(hl, _AUTH[prof.auth_protocol or "sha"])
            if prof.priv_key is not None:
                kwargs["privKey"] = prof.priv_key.resolve().reveal()
                kwargs["privProtocol"] = getattr(hl, _PRIV[prof.priv_protocol or "aes"])
        try:
            self._transport = await hl.UdpTransportTarget.create(
                (self.target, prof.port), timeout=self.settings.timeout, retries=self.settings.retries)
        except Exception as exc:
            raise SnmpUnreachable(f"{self.target}: cannot resolve or reach it for SNMPv3 ({type(exc).__name__})"
                                  ) from exc
        self._engine = self._engines.get(prof) if self._engines is not None else hl.SnmpEngine()
        self._auth = hl.UsmUserData(prof.user, **kwargs)
        self._context = hl.ContextData(contextName=prof.context.encode()) if prof.context else hl.ContextData()
        return self

    def close(self) -> None:
        if self._engine is not None and self._engines is None:
            _close_engine(self._engine)
        self._engine = None

    async def get(self, oids: Sequence[Oid]) -> list[Varbind]:
        from pysnmp.hlapi.v3arch import asyncio as hl

        return self._answer(await self._call(hl.get_cmd(self._engine, self._auth, self._transport, self._context,
                                                        *self._objects(oids), lookupMib=False)))

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[Varbind]:
        from pysnmp.hlapi.v3arch import asyncio as hl

        return self._answer(await self._call(hl.bulk_cmd(self._engine, self._auth, self._transport, self._context,
                                                         0, max_repetitions, *self._objects(oids), lookupMib=False)))

    async def _call(self, request: Awaitable[tuple[Any, Any, Any, Any]]) -> tuple[Any, Any, Any, Any]:
        """pysnmp's own exceptions (a key it refuses, a socket error) as ours, without their text."""
        try:
            return await request
        except OSError as exc:
            raise _os_error(self.target, self.profile.port, exc) from exc
        except Exception as exc:
            if type(exc).__name__ == "WrongValueError":
                raise SnmpError(f"{self.target}: pysnmp refused the settings of SNMPv3 profile {self.profile.name!r} "
                                "(keys need at least 8 characters; check the protocols)") from exc
            raise SnmpError(f"{self.target}: SNMPv3 request failed in pysnmp ({type(exc).__name__})") from exc

    @staticmethod
    def _objects(oids: Sequence[Oid]) -> list[Any]:
        from pysnmp.hlapi.v3arch import asyncio as hl

        return [hl.ObjectType(hl.ObjectIdentity(dotted(o))) for o in oids]

    def _answer(self, reply: tuple[Any, Any, Any, Any]) -> list[Varbind]:
        indication, status, index, varbinds = reply
        if indication:
            kind = type(indication).__name__
            if kind == "RequestTimedOut":
                raise SnmpTimeout(f"{self.target}:{self.profile.port}: no SNMPv3 answer within "
                                  f"{self.settings.timeout:g} s ({self.settings.retries + 1} attempts)")
            if kind in _AUTH_INDICATIONS:
                raise SnmpAuthError(f"{self.target}: SNMPv3 user {self.profile.user!r} was refused ({kind}); "
                                    f"check the keys and protocols of profile {self.profile.name!r}")
            raise SnmpProtocolError(f"{self.target}: SNMPv3 exchange failed ({kind})")
        if status:
            raise _status_error(self.target, int(status), int(index), [])
        return [_from_pysnmp(vb[0], vb[1]) for vb in varbinds]


def _from_pysnmp(name: Any, value: Any) -> Varbind:
    """A pysnmp (name, value) pair as our plain (oid, tag, value) triple."""
    oid = tuple(int(x) for x in (name.get_oid() if hasattr(name, "get_oid") else name))
    tag_obj = value.tagSet[-1] if len(value.tagSet) else value.tagSet.baseTag
    tag = int(tag_obj.tagClass) | int(tag_obj.tagFormat) | int(tag_obj.tagId)
    if tag in EXCEPTION_TAGS or tag == 0x05:
        return oid, tag, None
    if hasattr(value, "asOctets"):
        return oid, tag, bytes(value.asOctets())
    if hasattr(value, "asTuple"):
        return oid, tag, tuple(int(x) for x in value.asTuple())
    return oid, tag, int(value)


# ------------------------------------------------------------------------------------------ opening, walking


async def open_session(target: str, profile: SnmpProfile, settings: SnmpSettings,
                       engines: EnginePool | None = None) -> SnmpSession:
    """A session to ``target`` with ``profile``; secrets are read here, at the moment of use."""
    if profile.version == "3":
        return await V3Session(target, profile, settings, engines).open()
    assert profile.community is not None
    return await V2cSession(target, profile.port, profile.community.resolve().reveal(), settings).open()


async def walk(session: SnmpSession, columns: Sequence[Oid], settings: SnmpSettings) -> list[Varbind]:
    """Every instance under each of ``columns`` (a whole subtree when given one root), in OID order per column.

    One GETBULK asks for the next rows of all columns still going; the agent may return fewer rows
    than asked (or truncate mid-row), which only means more requests.
    """
    results: list[list[Varbind]] = [[] for _ in columns]
    last: list[Oid] = list(columns)
    active = list(range(len(columns)))
    total = 0
    repetitions = max(1, settings.max_repetitions)
    while active:
        request = [last[c] for c in active]
        try:
            answer = await session.get_bulk(request, repetitions)
        except SnmpTooBig:
            if repetitions == 1:
                raise
            repetitions //= 2
            continue
        if not answer:
            raise SnmpProtocolError(f"{session.target}: empty GETBULK answer while walking "
                                    f"{', '.join(dotted(columns[c]) for c in active)}")
        width = len(active)
        ended: set[int] = set()
        for i, (name, tag, value) in enumerate(answer):
            c = active[i % width]
            if c in ended:
                continue
            root = columns[c]
            if tag == TAG_END_OF_MIB_VIEW or name[:len(root)] != root:
                ended.add(c)
                continue
            if name <= last[c]:
                raise SnmpProtocolError(f"{session.target}: the agent returned {dotted(name)} after "
                                        f"{dotted(last[c])} (OIDs not increasing); its walk of "
                                        f"{dotted(root)} cannot finish")
            if tag in EXCEPTION_TAGS:  # noSuchObject/noSuchInstance inside a walk: skip, keep going
                last[c] = name
                continue
            results[c].append((name, tag, value))
            last[c] = name
        total += len(answer)
        if total > settings.max_varbinds_per_walk:
            raise SnmpProtocolError(f"{session.target}: walk of {dotted(columns[0])} returned more than "
                                    f"{settings.max_varbinds_per_walk} values; the agent seems to loop")
        active = [c for c in active if c not in ended]
    return [vb for column in results for vb in column]
