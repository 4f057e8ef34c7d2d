"""TCP connect probes: the I/O half of ``cmdb scan``.

A probe is a plain ``connect()`` (no raw sockets, no root). Per port the answer is one of

- ``open``: the handshake completed; then, on ports where the server speaks first, what it sends
  within the banner timeout is kept (SSH, SMTP, FTP greetings), and on TLS ports a handshake fetches
  the served certificate chain over the same connection (see ``tls``). Nothing else is ever sent;
- ``closed``: refused (RST), a definite answer;
- ``filtered``: no answer within the connect timeout;
- ``unreachable``: EHOSTUNREACH / ENETUNREACH / EHOSTDOWN / ENETDOWN (once one port says so, the
  target's remaining ports are not probed and are reported unreachable too);
- ``error``: any other socket error (its errno text is kept).

Limits: one semaphore caps the connections open at once (``concurrency``) and one token bucket
caps connects per second (``rate``), both shared by every target of the run. Reverse DNS runs in a
small thread pool of our own (``gethostbyaddr`` blocks) and is abandoned after ``dns_timeout``; it is
asked only for targets with an open port. The result is a JSON-ready dict, the raw input of
``transform``; ``tests/data/scan/`` holds recorded ones.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from discovery.certificates import SystemTrust, der_to_pem
from discovery.outcomes import Outcome, TargetError
from discovery.scan.ratelimit import TokenBucket
from discovery.scan.tls import inventory_context, served_chain
from discovery.services import CLIENT_SPEAKS_FIRST

OPEN, CLOSED, FILTERED, UNREACHABLE, ERROR = "open", "closed", "filtered", "unreachable", "error"
UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN})
BANNER_MAX = 512


@dataclass(frozen=True)
class ProbeSettings:
    """How a scan probes; ``tls_ports`` are where a handshake is attempted (configured plus well-known)."""

    ports: tuple[int, ...]
    tls_ports: frozenset[int] = frozenset()
    connect_timeout: float = 1.0
    banner_timeout: float = 0.5
    tls_timeout: float = 3.0
    dns: bool = True
    dns_timeout: float = 2.0
    concurrency: int = 256
    rate: float | None = 1000.0

    def __post_init__(self) -> None:
        if not self.ports:
            raise ValueError("no ports to probe")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        for name in ("connect_timeout", "banner_timeout", "tls_timeout", "dns_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


def classify_connect_error(exc: OSError) -> str:
    """A failed connect as closed / unreachable / filtered / error (pure, for tests and the prober)."""
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError) or exc.errno in (
            errno.ECONNREFUSED, errno.ECONNRESET):
        return CLOSED
    if exc.errno in UNREACHABLE_ERRNOS:
        return UNREACHABLE
    if exc.errno == errno.ETIMEDOUT:
        return FILTERED
    return ERROR


def clean_banner(data: bytes) -> str | None:
    """The first line of a greeting as printable text (at most 200 characters), or None."""
    text = data.decode("utf-8", errors="replace")
    for line in text.replace("\r", "\n").split("\n"):
        printable = "".join(c if c.isprintable() and c != "\ufffd" else " " for c in line)
        printable = " ".join(printable.split())
        if printable:
            return printable[:200]
    return None


@dataclass
class _TargetState:
    unreachable: bool = False


@dataclass
class ProbeStats:
    """Counters for benchmarks and logs: connects started and the most connections open at once."""

    probes: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    tls_handshakes: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


class Prober:
    """Probes targets under shared concurrency and rate limits; one per scan run."""

    def __init__(self, settings: ProbeSettings, trust: SystemTrust | None = None) -> None:
        self.settings = settings
        self.trust = trust
        self.stats = ProbeStats()
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._bucket = TokenBucket(settings.rate) if settings.rate else None
        self._executor = ThreadPoolExecutor(max_workers=min(16, settings.concurrency), thread_name_prefix="scan-dns")
        self._ctx = inventory_context()

    def close(self) -> None:
        """Stops the DNS threads (a resolver call already running finishes on its own)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def probe_target(self, target: str) -> dict[str, Any]:
        """Every configured port of ``target`` (an address or a name) plus reverse DNS, as a raw dict."""
        name: str | None = None
        try:
            address = str(ipaddress.ip_address(target))
        except ValueError:
            name = target
            address = await self._resolve(target)
        state = _TargetState()
        ports = await asyncio.gather(*(self._probe_port(address, p, name, state) for p in self.settings.ports))
        raw: dict[str, Any] = {"target": target, "address": address, "ports": list(ports)}
        if name:
            raw["name"] = name
        if not self.settings.dns:
            raw["dns"] = "off"
        elif not any(p["state"] == OPEN for p in ports):
            raw["dns"] = "skipped"
        else:
            raw["ptr"], raw["dns"] = await self._reverse_dns(address)
        return raw

    async def _resolve(self, name: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.run_in_executor(self._executor, socket.getaddrinfo, name, None, 0, socket.SOCK_STREAM),
                self.settings.dns_timeout)
        except TimeoutError as exc:
            raise TargetError(Outcome.TIMEOUT, f"{name}: no DNS answer within {self.settings.dns_timeout:g} s; "
                                               "check the resolver or scan the address") from exc
        except OSError as exc:
            raise TargetError(Outcome.UNREACHABLE, f"{name}: cannot resolve the name ({exc.strerror or exc}); "
                                                   "check it or scan the address") from exc
        addresses = [str(info[4][0]) for info in infos]
        v4 = [a for a in addresses if ":" not in a]
        return (v4 or addresses)[0]

    async def _reverse_dns(self, address: str) -> tuple[str | None, str]:
        loop = asyncio.get_running_loop()
        try:
            host, _aliases, _addrs = await asyncio.wait_for(
                loop.run_in_executor(self._executor, socket.gethostbyaddr, address), self.settings.dns_timeout)
        except TimeoutError:
            return None, "timeout"
        except (OSError, UnicodeError):  # herror / gaierror: no PTR record
            return None, "none"
        return (host.rstrip(".").lower() or None), "ok"

    async def _probe_port(self, address: str, port: int, name: str | None, state: _TargetState) -> dict[str, Any]:
        async with self._sem:
            if state.unreachable:
                return {"port": port, "state": UNREACHABLE}
            if self._bucket is not None:
                await self._bucket.take()
            if state.unreachable:
                return {"port": port, "state": UNREACHABLE}
            stats = self.stats
            stats.probes += 1
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            try:
                result = await self._connect_and_look(address, port, name)
            finally:
                stats.in_flight -= 1
            if result["state"] == UNREACHABLE:
                state.unreachable = True
            stats.by_state[result["state"]] = stats.by_state.get(result["state"], 0) + 1
            return result

    async def _connect_and_look(self, address: str, port: int, name: str | None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        handed_over = False
        try:
            try:
                async with asyncio.timeout(self.settings.connect_timeout):  # no extra task, unlike wait_for
                    await loop.sock_connect(sock, (address, port))
            except TimeoutError:
                return {"port": port, "state": FILTERED}
            except OSError as exc:
                out: dict[str, Any] = {"port": port, "state": classify_connect_error(exc)}
                if out["state"] == ERROR:
                    out["error"] = exc.strerror or type(exc).__name__
                return out
            result: dict[str, Any] = {"port": port, "state": OPEN}
            if port in self.settings.tls_ports:
                handed_over = True
                result["tls"] = await self._tls(sock, name)
            elif port not in CLIENT_SPEAKS_FIRST:
                banner = await self._banner(sock)
                if banner:
                    result["banner"] = banner
            return result
        finally:
            if not handed_over:
                sock.close()

    async def _banner(self, sock: socket.socket) -> str | None:
        """What the server sends first, until a line end, BANNER_MAX bytes or the banner timeout."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.settings.banner_timeout
        data = b""
        while b"\n" not in data and len(data) < BANNER_MAX:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    chunk = await loop.sock_recv(sock, BANNER_MAX - len(data))
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            data += chunk
        return clean_banner(data) if data else None

    async def _tls(self, sock: socket.socket, name: str | None) -> dict[str, Any]:
        """Handshake over the connected socket and capture the served chain; never verifies."""
        self.stats.tls_handshakes += 1
        transport: asyncio.WriteTransport | None = None
        try:
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(sock=sock, ssl=self._ctx, server_hostname=name or "",
                                            ssl_handshake_timeout=self.settings.tls_timeout + 5),  # backstop only
                    self.settings.tls_timeout)
            except TimeoutError:
                return {"status": "timeout"}
            except (ssl.SSLError, ConnectionError, OSError) as exc:
                return {"status": "failed", "error": _tls_error_text(exc)}
            transport = writer.transport
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is None:
                return {"status": "failed", "error": "no TLS session"}
            ders, source = served_chain(ssl_object)
            chain = [der_to_pem(d) for d in ders]
            out: dict[str, Any] = {"status": "ok", "version": ssl_object.version(),
                                   "cipher": (ssl_object.cipher() or (None,))[0],
                                   "chain_source": source, "chain": chain}
            if self.trust is not None:
                verdict = self.trust.check(chain)
                out["trusted"], out["trust_detail"] = verdict.trusted, verdict.reason
            return out
        finally:
            if transport is not None:
                transport.abort()  # no close_notify round trip: we are done with this server
            else:
                sock.close()


def _tls_error_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    return getattr(exc, "strerror", None) or exc.__class__.__name__
