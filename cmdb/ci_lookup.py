"""Every CI a user's word could mean: ``cmdb ci show 10.0.0.5`` names the IPAddress CI *and* the host
that has that address as an identity value; showing only the first would hide the second.

``cmdb.history.resolve_ci`` picks the one CI a command acts on; ``all_matches`` lists every CI the
word matches and how, so the CLI can say "also:" under the one it shows.
"""

from __future__ import annotations

import ipaddress

from cmdb.identity import single_value_keys
from cmdb.model import Schema
from cmdb.store.base import GraphStore, SearchQuery

ADDRESS_ATTRIBUTES = ("ip_addresses", "management_ip")
"""Attributes that hold a host's addresses (as identity values, alone or with its hostname)."""


def all_matches(store: GraphStore, schema: Schema, ref: str, limit: int = 20) -> dict[str, str]:
    """CI id -> how ``ref`` matches it (id, name, an identity key, an address), at most ``limit``."""
    found: dict[str, str] = {}
    if store.get_ci(ref) is not None:
        found[ref] = "id"
    for ci_id in store.find_by_name(ref):
        found.setdefault(ci_id, "name")
    for key in single_value_keys(schema, ref):
        keyed = store.find_by_key(key)
        if keyed is not None:
            found.setdefault(keyed, key.split(":", 1)[-1].split("=", 1)[0])
    try:
        address = str(ipaddress.ip_address(ref))
    except ValueError:
        return found
    for attr in ADDRESS_ATTRIBUTES:
        classes = [c for c, spec in schema.classes.items() if attr in spec.attributes]
        if not classes:
            continue
        for ci in store.search(SearchQuery(classes=classes, attrs={attr: address}, limit=limit)).items:
            found.setdefault(ci.id, attr)
    return dict(list(found.items())[:limit])
