"""Target lists: CIDRs, single addresses, ranges, host names, files of those, and exclusions."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path

from cmdb.errors import BadInputError

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_LIMIT = 65536


def _range(spec: str) -> tuple[IPAddr, IPAddr] | None:
    """``10.0.0.5-10.0.0.9`` or ``10.0.0.5-9`` as (first, last), or None when ``spec`` is no range."""
    if "-" not in spec:
        return None
    left, right = spec.split("-", 1)
    try:
        first = ipaddress.ip_address(left.strip())
    except ValueError:
        return None
    right = right.strip()
    try:
        if right.isdigit() and first.version == 4:
            last: IPAddr = ipaddress.ip_address(".".join([*str(first).split(".")[:3], right]))
        else:
            last = ipaddress.ip_address(right)
    except ValueError as exc:
        raise BadInputError(f"target range {spec!r}: {exc}; write it as 10.0.0.5-10.0.0.9 or 10.0.0.5-9") from None
    if last.version != first.version or int(last) < int(first):
        raise BadInputError(f"target range {spec!r} ends before it starts; write first-last")
    return first, last


def _expand_one(spec: str, limit: int) -> Iterator[str]:
    spec = spec.strip()
    if not spec or spec.startswith("#"):
        return
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise BadInputError(f"target file {path}: {exc.strerror}; give a readable file of targets") from None
        for line in lines:
            yield from _expand_one(line.split("#", 1)[0], limit)
        return
    rng = _range(spec)
    if rng is not None:
        first, last = rng
        if int(last) - int(first) + 1 > limit:
            raise BadInputError(f"target range {spec!r} has more than {limit} addresses; split it or raise --limit")
        for n in range(int(first), int(last) + 1):
            yield str(ipaddress.ip_address(n))
        return
    if "/" in spec:
        try:
            net = ipaddress.ip_network(spec, strict=False)
        except ValueError as exc:
            raise BadInputError(f"target {spec!r} is not a CIDR: {exc}") from None
        if net.num_addresses > limit:
            raise BadInputError(f"target {spec} has {net.num_addresses} addresses, more than {limit}; narrow it")
        hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
        for a in hosts:
            yield str(a)
        return
    try:
        yield str(ipaddress.ip_address(spec))
    except ValueError:
        if any(c.isspace() for c in spec) or spec.startswith("-"):
            raise BadInputError(f"target {spec!r} is neither an address, a CIDR, a range nor a host name") from None
        yield spec.lower()


def _excluded(exclude: Sequence[str], limit: int) -> tuple[set[str], list[IPNet]]:
    names: set[str] = set()
    nets: list[IPNet] = []
    for spec in exclude:
        if "/" in spec and not spec.startswith("@"):
            try:
                nets.append(ipaddress.ip_network(spec.strip(), strict=False))
                continue
            except ValueError as exc:
                raise BadInputError(f"exclusion {spec!r} is not a CIDR: {exc}") from None
        names.update(_expand_one(spec, limit))
    return names, nets


def expand_targets(specs: Sequence[str], exclude: Sequence[str] = (), limit: int = DEFAULT_LIMIT) -> list[str]:
    """Targets in the order given, each once, without the excluded ones; at most ``limit``."""
    names, nets = _excluded(exclude, limit)
    out: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        for t in _expand_one(spec, limit):
            if t in seen or t in names:
                continue
            try:
                addr = ipaddress.ip_address(t)
                if any(addr in n for n in nets if n.version == addr.version):
                    continue
            except ValueError:
                pass
            seen.add(t)
            out.append(t)
            if len(out) > limit:
                raise BadInputError(f"the targets expand to more than {limit} addresses; narrow them or raise --limit")
    if not out:
        raise BadInputError("no targets left to discover (check the target list and --exclude)")
    return out


def scope_of(target: str) -> str:
    """The lifecycle scope of one target: ``a.b.c.d/32`` for an address, the name otherwise."""
    try:
        addr = ipaddress.ip_address(target)
    except ValueError:
        return target
    return f"{addr}/{addr.max_prefixlen}"
