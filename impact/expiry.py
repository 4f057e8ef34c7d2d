"""Expiry as failure: certificates past ``not_after`` and licences past ``expires`` fail at a time.

Turning expiry into failure inputs lets the engine answer "what breaks if these lapse" with the same
propagation (an expired certificate takes its users down; ``LICENSED_BY`` only degrades).
"""

from __future__ import annotations

from datetime import timedelta

from cmdb.store.base import GraphStore, SearchQuery, iso, parse_iso
from impact.states import State

EXPIRY_ATTRS = {"Certificate": "not_after", "License": "expires"}
PAGE = 1000


def expiring(store: GraphStore, at: str, within: timedelta = timedelta(0)) -> dict[str, str]:
    """CI id -> expiry time of every certificate and licence that has expired by ``at + within``."""
    horizon = parse_iso(at) + within
    out: dict[str, str] = {}
    for cls, attr in EXPIRY_ATTRS.items():
        offset = 0
        while True:
            page = store.search(SearchQuery(classes=[cls], limit=PAGE, offset=offset))
            for ci in page.items:
                when = ci.attrs.get(attr)
                if ci.status == "retired" or not when:
                    continue
                text = str(when) if "T" in str(when) else f"{when}T23:59:59Z"  # a date expires at its end
                if parse_iso(text) <= horizon:
                    out[ci.id] = iso(parse_iso(text))
            offset += PAGE
            if offset >= page.total:
                break
    return out


def expiry_failures(store: GraphStore, at: str, within: timedelta = timedelta(0)) -> dict[str, State]:
    """Failure inputs for the engine: every CI from ``expiring`` down."""
    return {ci: State.DOWN for ci in expiring(store, at, within)}
