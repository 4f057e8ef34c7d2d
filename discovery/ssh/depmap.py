"""Pure application dependency mapping across the hosts of one SSH discovery run.

Input: every successfully discovered host's sockets (``ss -tanpH``) and addresses. Output: one batch
per host with ``DEPENDS_ON`` edges from that host's client processes to what they talk to, and the
client processes' Applications (``<process>@<host>``, ``RUNS_ON`` the host: a process that only
connects out has no listening socket, so the host's own batch does not name it).

Rules:

* A socket is a service only if a LISTEN socket exists on that port on its host. An established
  socket whose *local* port is a listening port is the server side of a connection and is ignored (the
  client's host reports the edge); only the client side makes an edge. So an ephemeral client port is
  never taken for a service, on either end.
* The peer address is resolved to a discovered host through that host's addresses (loopback and the
  host's own addresses mean the same host). On a discovered host the peer port must be listened on;
  the edge goes to the listening process's ``Application`` (or ``Database`` for a known database server:
  postgres, mysqld, mongod, redis-server ...). When the peer host was discovered and nothing listens on
  that port, it is not a service and no edge is made.
* A peer that is not among the discovered hosts stays an unresolved endpoint:
  ``Application DEPENDS_ON ServiceEndpoint(address, port)`` of the remote side; a later run that
  discovers that host resolves it to the process.
* Evidence sits on the edge: ``ports`` (the server ports seen), ``client_process``,
  ``server_process``, ``client_host``, ``server_host``, ``evidence: ss`` and ``seen_at``. ``seen_at`` is
  the day (UTC) the connection was seen: day precision so that an unchanged dependency writes at most
  one history event a day; the exact last sighting is the relationship's ``last_seen``.

Batches: source ``ssh``, scope ``depmap:<host scope>`` (not the host's own scope, whose complete batch
would otherwise age these edges), complete when the host's sockets were read and no host it talks to
failed in this run, so a dependency is aged only when its client host was seen without it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cmdb.batch import Batch
from discovery.observations import Application, Dependency, Device, Endpoint, Fact, to_batch
from discovery.services import guess_service
from discovery.ssh.facts import HostFacts
from discovery.ssh.parsers import Socket
from discovery.ssh.transform import SOURCE, app_class, app_name, host_class, listening_processes
from discovery.targets import scope_of

CONNECTED_STATES = frozenset({"ESTAB", "SYN-SENT", "CLOSE-WAIT"})


@dataclass
class _Edge:
    src: tuple[str, str]  # (class, name) of the client application
    dst_kind: str  # "app" or "endpoint"
    dst: tuple[str, ...]  # (class, name) or (address, port)
    ports: set[int] = field(default_factory=set)
    client_process: str = ""
    server_process: str | None = None
    client_host: str = ""
    server_host: str | None = None


def depmap_scope(target: str) -> str:
    return f"depmap:{scope_of(target)}"


def listens(host: HostFacts, address: str, port: int) -> list[Socket]:
    """The LISTEN sockets of ``host`` that accept connections to ``address:port``."""
    ip = ipaddress.ip_address(address)
    out: list[Socket] = []
    for s in host.sockets or ():
        if s.state != "LISTEN" or s.local_port != port:
            continue
        local = ipaddress.ip_address(s.local_addr)
        if local == ip or (local.is_unspecified and (local.version == ip.version or local.version == 6)):
            out.append(s)
    return out


class _Resolver:
    """Which discovered host owns an address."""

    def __init__(self, hosts: Sequence[HostFacts]) -> None:
        self.owner: dict[str, HostFacts] = {}
        for h in hosts:
            for a in sorted(h.public_addresses() | {h.address}):
                self.owner.setdefault(a, h)

    def host_of(self, client: HostFacts, address: str) -> HostFacts | None:
        if address in client.own_addresses():
            return client
        owner = self.owner.get(address)  # before loopback: a lab may give hosts 127/8 addresses on real NICs
        if owner is None and client.is_host_local(address):
            return client
        return owner


def map_dependencies(hosts: Sequence[HostFacts], failed_targets: Iterable[str] = ()) -> list[Batch]:
    """One batch of DEPENDS_ON edges per host whose sockets are known."""
    resolver = _Resolver(hosts)
    failed = set(failed_targets)
    batches: list[Batch] = []
    for host in sorted(hosts, key=lambda h: h.target):
        if host.sockets is None:
            continue
        edges, touches_failed = _host_edges(host, resolver, failed)
        batches.append(_batch(host, edges, complete=not touches_failed))
    return batches


def _host_edges(host: HostFacts, resolver: _Resolver, failed: set[str]) -> tuple[list[_Edge], bool]:
    edges: dict[tuple[str, ...], _Edge] = {}
    touches_failed = False
    for s in host.sockets or ():
        if s.state not in CONNECTED_STATES or not s.processes:
            continue
        if listens(host, s.local_addr, s.local_port):
            continue  # the server side of an inbound connection
        client = listening_processes(s)[0]
        src = (app_class(client), app_name(client, host.label))
        peer_host = resolver.host_of(host, s.peer_addr)
        if peer_host is None:
            if s.peer_addr in failed:
                touches_failed = True
            if host.is_host_local(s.peer_addr) or ipaddress.ip_address(s.peer_addr).is_unspecified:
                continue
            key: tuple[str, ...] = (*src, "endpoint", s.peer_addr, str(s.peer_port))
            edge = edges.setdefault(key, _Edge(src, "endpoint", (s.peer_addr, str(s.peer_port)),
                                               client_process=client, client_host=host.label))
            edge.ports.add(s.peer_port)
            continue
        if peer_host.sockets is None:
            touches_failed = True  # its listeners are unknown this run: no edge either way
            continue
        servers = listens(peer_host, s.peer_addr, s.peer_port)
        if not servers:
            continue  # nothing listens there: not a service (an ephemeral port, or a socket we cannot see)
        names = [n for sock in servers for n in listening_processes(sock)]
        if not names:
            if peer_host.is_host_local(s.peer_addr):
                continue
            key = (*src, "endpoint", s.peer_addr, str(s.peer_port))
            edge = edges.setdefault(key, _Edge(src, "endpoint", (s.peer_addr, str(s.peer_port)),
                                               client_process=client, client_host=host.label,
                                               server_host=peer_host.label))
            edge.ports.add(s.peer_port)
            continue
        server = names[0]
        dst = (app_class(server), app_name(server, peer_host.label))
        if dst == src:
            continue
        key = (*src, "app", *dst)
        edge = edges.setdefault(key, _Edge(src, "app", dst, client_process=client, server_process=server,
                                           client_host=host.label, server_host=peer_host.label))
        edge.ports.add(s.peer_port)
    return [edges[k] for k in sorted(edges)], touches_failed


def _batch(host: HostFacts, edges: list[_Edge], complete: bool) -> Batch:
    facts: list[Fact] = []
    if edges:
        cls, _ = host_class(host)
        facts.append(Device(cls, hostname=host.hostname or None, fqdn=host.fqdn or None,
                            management_ip=host.address or None))
    seen_at = (host.collected_at or "")[:10] or None
    apps: dict[str, Application] = {}

    def app(ident: tuple[str, ...], client: bool) -> str:
        """An application once; it runs on this host if it is a client here (servers are the peers')."""
        cls, name = ident
        if name not in apps:
            apps[name] = Application(name, cls, process=name.rsplit("@", 1)[0] if cls == "Application" else None,
                                     on_device=client)
            facts.append(apps[name])
        apps[name].on_device |= client
        return name

    for e in edges:
        client = app(e.src, True)
        if e.dst_kind == "app":
            server: str | tuple[str, int] = app(e.dst, False)
        else:
            address, port = e.dst
            server = (address, int(port))
            facts.append(Endpoint(address, int(port), "tcp", service=guess_service(int(port), None, None),
                                  on_device=False))
        attrs: dict[str, object] = {"evidence": "ss", "ports": sorted(e.ports), "client_process": e.client_process,
                                    "client_host": e.client_host}
        if e.server_process:
            attrs["server_process"] = e.server_process
        if e.server_host:
            attrs["server_host"] = e.server_host
        if seen_at:
            attrs["seen_at"] = seen_at
        facts.append(Dependency(client, server, attrs))
    return to_batch(SOURCE, depmap_scope(host.target), complete, facts)
