"""History questions: what changed near a CI lately, and what did it look like at a past time.

Every change is an event, so a CI "as of" a time is the fold of its events up to that time, and
"what changed near this service" is the events of the CI and of what it depends on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb.errors import BadInputError, NotFoundError
from cmdb.identity import single_value_keys
from cmdb.model import Schema
from cmdb.store.base import Event, GraphStore, iso

_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> str:
    """``7d``, ``12h``, ``30m`` or an ISO time -> ISO timestamp."""
    now = now or datetime.now(UTC)
    m = _SPAN.match(text)
    if m:
        return iso(now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}))
    return parse_time(text)


_RELATIVE = re.compile(r"^\s*now\s*(?:(?P<sign>[+-])\s*(?P<n>\d+)\s*(?P<unit>[smhdw]))?\s*$", re.IGNORECASE)


def parse_time(text: str, now: datetime | None = None) -> str:
    """An ISO-8601 time (UTC when it names no zone), or ``now``, ``now-2h``, ``now+1d`` -> ISO timestamp.

    The relative forms let scripts and the README's examples say "an hour from now" without a date
    that goes stale.
    """
    rel = _RELATIVE.match(text)
    if rel:
        now = now or datetime.now(UTC)
        if not rel["sign"]:
            return iso(now)
        span = timedelta(**{_UNITS[rel["unit"].lower()]: int(rel["n"])})
        return iso(now + span if rel["sign"] == "+" else now - span)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"{text!r} is not a time; use ISO-8601 like 2026-11-20T02:00, now, now-2h or now+1d"
                            ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return iso(dt)


def resolve_ci(store: GraphStore, schema: Schema, ref: str) -> str:
    """A CI id from an id, a display name, or any single-attribute identity value (serial, FQDN, ...)."""
    found = store.get_ci(ref)
    if found is not None:
        return found.id  # a merged-away id answers with the CI it was merged into
    by_name = store.find_by_name(ref)
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise BadInputError(f"{ref!r} names {len(by_name)} CIs ({', '.join(by_name[:5])}); use a CI id")
    for k in single_value_keys(schema, ref):
        by_key = store.find_by_key(k)
        if by_key:
            return by_key
    raise NotFoundError(f"no CI matches {ref!r} (tried id, name and identity keys); see `cmdb ci search`")


def dependency_types(schema: Schema) -> tuple[list[str], list[str]]:
    """(types followed outwards, types followed inwards) to go from a CI to what it depends on."""
    out = [r.name for r in schema.relationships.values() if r.impact in ("to_source", "both")]
    inward = [r.name for r in schema.relationships.values() if r.impact in ("to_target", "both")]
    return out, inward


def dependencies(store: GraphStore, schema: Schema, ci_id: str, depth: int) -> dict[str, int]:
    """CIs that ``ci_id`` depends on within ``depth`` hops, with their distance (itself at 0)."""
    out_types, in_types = dependency_types(schema)
    dist = {ci_id: 0}
    frontier = [ci_id]
    for hop in range(1, depth + 1):
        if not frontier:
            break
        nxt: list[str] = []
        for rel in store.neighbors(frontier, out_types, "out"):
            if rel.dst not in dist:
                dist[rel.dst] = hop
                nxt.append(rel.dst)
        for rel in store.neighbors(frontier, in_types, "in"):
            if rel.src not in dist:
                dist[rel.src] = hop
                nxt.append(rel.src)
        frontier = nxt
    return dist


def history_near(store: GraphStore, schema: Schema, ci_id: str, since: str | None, depth: int) -> list[Event]:
    """Events of ``ci_id`` and of what it depends on within ``depth`` hops, oldest first."""
    scope = dependencies(store, schema, ci_id, depth)
    return store.events(list(scope), since=since)


@dataclass
class CISnapshot:
    """A CI and its relationships as they were at ``at``."""

    id: str
    at: str
    cls: str
    attrs: dict[str, Any]
    status: str
    relationships: list[dict[str, Any]] = field(default_factory=list)


def ci_as_of(store: GraphStore, ci_id: str, at: str) -> CISnapshot:
    """Replay the CI's events up to ``at``; raises NotFoundError if it did not exist yet."""
    snap: CISnapshot | None = None
    rels: dict[str, dict[str, Any]] = {}
    for e in store.events([ci_id], until=at):
        if e.rel_id is not None:
            if e.kind == "rel.created":
                rels[e.rel_id] = {"id": e.rel_id, "type": e.attr, "src": e.ci_id, "dst": e.peer_id,
                                  "attrs": dict(e.new or {}), "status": "active"}
            elif e.rel_id in rels and e.kind == "rel.attr" and e.attr is not None:
                if e.new is None:
                    rels[e.rel_id]["attrs"].pop(e.attr, None)
                else:
                    rels[e.rel_id]["attrs"][e.attr] = e.new
            elif e.rel_id in rels and e.kind == "rel.status":
                rels[e.rel_id]["status"] = e.new
            continue
        if e.ci_id != ci_id:
            continue
        if e.kind == "ci.created":
            snap = CISnapshot(ci_id, at, e.new["class"], dict(e.new["attrs"]), "active")
        elif snap is None:
            continue
        elif e.kind == "ci.attr" and e.attr is not None:
            if e.new is None:
                snap.attrs.pop(e.attr, None)
            else:
                snap.attrs[e.attr] = e.new
        elif e.kind == "ci.class":
            snap.cls = e.new
        elif e.kind == "ci.status":
            snap.status = e.new
    if snap is None:
        raise NotFoundError(f"CI {ci_id} did not exist at {at}")
    snap.relationships = sorted(
        (r for r in rels.values() if r["status"] != "retired"), key=lambda r: (r["type"], r["src"], r["dst"])
    )
    return snap
