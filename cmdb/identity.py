"""Identification: which existing CI a batch item describes.

Each class declares identity keys, strongest first (``cmdb/schema/core.yaml``). A key is a tuple
of attributes; a list attribute in a key yields one key per element, so any shared MAC address
identifies a box. Keys are namespaced by the class's identity domain so that a scanned ``Host``
and an SNMP-discovered ``Switch`` (both Devices) can be recognised as the same CI.

Items of one batch that share a key are merged before matching; an item (or merged group) whose
keys point at two distinct CIs is a conflict: recorded, never merged silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cmdb.batch import CIRecord
from cmdb.model import Schema


def normalize_key_value(value: Any) -> str:
    return str(value).strip().lower().rstrip(".")


def identity_keys(schema: Schema, cls: str, attrs: Mapping[str, Any]) -> dict[str, str]:
    """Key string -> key name (e.g. ``serial_number``), strongest first, for canonical ``attrs``."""
    ci_class = schema.ci_class(cls)
    out: dict[str, str] = {}
    for key in ci_class.identity:
        parts: list[list[str]] = []
        for attr in key:
            value = attrs.get(attr)
            if value is None:  # a schema default (IPAddress.vrf: global) is part of the identity too
                value = ci_class.defaults.get(attr)
            if value is None or value == "" or value == []:
                break
            values = value if isinstance(value, list) else [value]
            parts.append([normalize_key_value(v) for v in values if v is not None and str(v).strip()])
        else:
            name = "+".join(key)
            for combo in itertools.product(*parts):
                out[f"{ci_class.identity_domain}:{name}={'|'.join(combo)}"] = name
    return out


@dataclass
class ItemGroup:
    """Batch items that describe the same thing (they share a key), merged in batch order."""

    items: list[CIRecord]
    cls: str
    attrs: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)
    # attribute -> the different values items of this group gave (cmdb.planning.claims reports them)
    disagreements: dict[str, list[Any]] = field(default_factory=dict)

    def describe(self) -> str:
        return ", ".join(i.describe() for i in self.items)


def merge_batch_items(
    schema: Schema, items: Sequence[tuple[CIRecord, dict[str, Any]]], keys: Sequence[dict[str, str]] | None = None
) -> list[ItemGroup]:
    """Union items whose keys overlap; ``items`` pairs each record with its canonical attributes.

    ``keys`` are the items' identity keys when the caller has computed them already.
    """
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    item_keys: list[dict[str, str]] = []
    for i, (rec, attrs) in enumerate(items):
        mine = keys[i] if keys is not None else identity_keys(schema, rec.cls, attrs)
        item_keys.append(mine)
        for key in mine:
            j = owner.setdefault(key, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, ItemGroup] = {}
    for i, (rec, attrs) in enumerate(items):
        root = find(i)
        group = groups.get(root)
        if group is None:
            groups[root] = ItemGroup([rec], rec.cls, dict(attrs), dict(item_keys[i]))
            continue
        group.items.append(rec)
        group.cls = more_specific_class(schema, group.cls, rec.cls)
        for name, value in attrs.items():
            old = group.attrs.get(name)
            if isinstance(old, list) and isinstance(value, list):
                group.attrs[name] = sorted(set(old) | set(value))
            else:
                if old is not None and value is not None and old != value:
                    seen = group.disagreements.setdefault(name, [old])
                    if value not in seen:
                        seen.append(value)
                group.attrs[name] = value
        group.keys.update(item_keys[i])
    # Keys may grow with merged list attributes (hostname + each IP): recompute for merged groups.
    for group in groups.values():
        if len(group.items) > 1:
            group.keys = {**identity_keys(schema, group.cls, group.attrs), **group.keys}
    return list(groups.values())


def more_specific_class(schema: Schema, current: str, other: str) -> str:
    """``other`` if it refines ``current`` (Server refines Host), else ``current``."""
    if current != other and schema.is_a(other, current):
        return other
    return current


def single_value_keys(schema: Schema, value: str) -> list[str]:
    """Every identity key a lone value could be (a serial, an FQDN, an e-mail ...), each once: how a
    user's "show me X" finds a CI without saying which attribute X is."""
    out: dict[str, None] = {}
    norm = normalize_key_value(value)
    for cls in schema.classes.values():
        for key in cls.identity:
            if len(key) == 1:
                out.setdefault(f"{cls.identity_domain}:{key[0]}={norm}")
    return list(out)
