"""Port lists for ``cmdb scan``: the ``22,80,8000-8100`` syntax and the default lists.

The default TCP list is the ports an inventory cares about (remote access, web, mail, directory,
databases, management APIs), not a top-1000: a /24 times 40 ports is about 10,000 probes, a few
seconds at the default rate. ``WELL_KNOWN_TLS_PORTS`` are the ports where a TLS handshake is
attempted even when ``--tls-ports`` does not name them, so served certificates are found without
configuration.
"""

from __future__ import annotations

from collections.abc import Iterable

from cmdb.errors import BadInputError

DEFAULT_PORTS: tuple[int, ...] = (
    21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 161, 389, 443, 445, 465, 587, 636, 993, 995,
    1433, 1521, 2049, 2379, 3306, 3389, 5432, 5900, 5985, 5986, 6379, 6443, 8000, 8080, 8443, 9090,
    9200, 9443, 10250, 27017,
)
WELL_KNOWN_TLS_PORTS: frozenset[int] = frozenset({
    443, 465, 636, 853, 989, 990, 992, 993, 994, 995, 2376, 2379, 5061, 5986, 6443, 8443, 9443, 10250,
})
MAX_PORTS = 65535


def parse_ports(spec: str | Iterable[str], option: str = "--ports") -> list[int]:
    """``22,80,8000-8100`` (or several such strings) as a sorted list of distinct ports.

    Raises BadInputError naming ``option`` and the bad item, so the user knows what to fix.
    """
    parts: list[str] = []
    for chunk in [spec] if isinstance(spec, str) else list(spec):
        parts.extend(p.strip() for p in chunk.split(","))
    ports: set[int] = set()
    for part in parts:
        if not part:
            continue
        if "-" in part:
            left, right = (x.strip() for x in part.split("-", 1))
            first, last = _port(left, part, option), _port(right, part, option)
            if last < first:
                raise BadInputError(f"{option}: range {part!r} ends before it starts; write it as 8000-8100")
            ports.update(range(first, last + 1))
        else:
            ports.add(_port(part, part, option))
    if not ports:
        raise BadInputError(f"{option}: no ports given; write them as 22,80,443 or 8000-8100")
    return sorted(ports)


def _port(text: str, item: str, option: str) -> int:
    if not text.isdigit():
        raise BadInputError(f"{option}: {item!r} is not a port or a range; write them as 22,80,443 or 8000-8100")
    value = int(text)
    if not 1 <= value <= MAX_PORTS:
        raise BadInputError(f"{option}: port {value} in {item!r} is outside 1-{MAX_PORTS}")
    return value


def format_ports(ports: Iterable[int]) -> str:
    """The inverse of ``parse_ports`` with runs folded into ranges (for run records and messages)."""
    out: list[str] = []
    run: list[int] = []
    for p in sorted(set(ports)):
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [p]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)
