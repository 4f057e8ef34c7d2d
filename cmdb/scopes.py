"""Scopes of discovery runs: which run is a complete look at which item (partitions and ageing use it)."""

from __future__ import annotations

import ipaddress


def scope_covers(outer: str, inner: str) -> bool:
    """Whether a run over ``outer`` is a complete look at ``inner`` (equal, or a containing CIDR)."""
    if outer == inner:
        return True
    try:
        return ipaddress.ip_network(inner, strict=False).subnet_of(
            ipaddress.ip_network(outer, strict=False)  # type: ignore[arg-type]
        )
    except (ValueError, TypeError):
        return False
