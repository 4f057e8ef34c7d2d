"""Ports free on several loopback addresses at once, for the test labs and benchmarks.

A lab that serves one port on many 127.x addresses (scan targets, snmpsim agents, fakenos devices)
needs a port that no other process holds on any of them.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Literal

Kind = Literal["tcp", "udp"]


def hold_common_port(addresses: Iterable[str], kind: Kind = "tcp",
                     tries: int = 50) -> tuple[int, dict[str, socket.socket]]:
    """A port free on every address, with a socket bound to it on each (not listening), so no one
    else can take it before the caller does."""
    addrs = list(addresses)
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    for _ in range(tries):
        first = socket.socket(socket.AF_INET, sock_type)
        first.bind((addrs[0], 0))
        port = int(first.getsockname()[1])
        held = {addrs[0]: first}
        try:
            for a in addrs[1:]:
                s = socket.socket(socket.AF_INET, sock_type)
                held[a] = s
                s.bind((a, port))
            return port, held
        except OSError:
            for s in held.values():
                s.close()
    raise RuntimeError(f"no {kind} port free on all of {addrs[0]}..{addrs[-1]} after {tries} tries")


def free_common_port(addresses: Iterable[str], kind: Kind = "tcp", tries: int = 50) -> int:
    """A port free on every address right now (released again: a server about to start takes it)."""
    port, held = hold_common_port(addresses, kind, tries)
    for s in held.values():
        s.close()
    return port
