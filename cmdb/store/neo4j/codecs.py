"""How the Neo4j store encodes what it keeps in properties: JSON, search tokens, sightings, provenance,
history packs; and decodes records back into the store protocol's types. Pure functions, no I/O."""

from __future__ import annotations

import functools
import json
from typing import Any

from cmdb.errors import BadInputError
from cmdb.ingest import CLASS_ATTR
from cmdb.store.base import AttrValue, CIState, Conflict, Event, RelState, Sighting

SEP = "\x1f"

dump_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
"""The SQLite store's JSON form, so dumps of both stores carry identical strings."""


_raw_decode = json.JSONDecoder().raw_decode


def load_json(text: str | None) -> Any:
    """JSON this store wrote (no surrounding whitespace): ``raw_decode`` skips ``loads``' two regex
    scans, a third of its cost on the small strings a re-load parses by the hundred thousand."""
    if text is None:
        return None
    try:
        value, end = _raw_decode(text)
        if end == len(text):
            return value
    except json.JSONDecodeError:
        pass
    return json.loads(text)  # anything else: its full parse, and its error


def load_attrs(text: str) -> dict[str, Any]:
    value: dict[str, Any] = {} if text == "{}" else load_json(text)  # most relationships have none
    return value


def search_token(attr: str, value: Any) -> str | None:
    """One search token; numbers and booleans compare by value as SQLite's json_each does."""
    if value is None or isinstance(value, list | dict):
        return None
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        value = int(value)
    if isinstance(value, int | float):
        return f"{attr}=n:{value!r}"
    return f"{attr}=s:{value}"


def attr_tokens(attrs: dict[str, Any]) -> list[str]:
    """Tokens for every scalar of every attribute (list elements and mapping values included)."""
    out: set[str] = set()
    for attr, value in attrs.items():
        kind = type(value)
        if kind is str:  # the common cases first, without search_token's checks
            out.add(f"{attr}=s:{value}")
            continue
        if kind is int:
            out.add(f"{attr}=n:{value}")
            continue
        elems = value if kind is list else list(value.values()) if kind is dict else [value]
        for elem in elems:
            tok = search_token(attr, elem)
            if tok is not None:
                out.add(tok)
    return sorted(out)


def sight_key(source: str, scope: str) -> str:
    """The prefix of one (source, scope)'s entry in an item's ``sg`` list."""
    if SEP in source or SEP in scope:
        raise BadInputError(f"scope {scope!r} of source {source!r} contains U+001F; use printable text")
    return f"{source}{SEP}{scope}{SEP}"


def sight_entry(s: Sighting) -> str:
    """One entry of an item's ``sg`` list."""
    return sight_key(s.source, s.scope) + dump_json([s.first_seen, s.last_seen, s.last_run, s.missed, s.status])


@functools.lru_cache(maxsize=4096)
def _sighting_fields(entry: str) -> tuple[str, str, Any, Any, Any, int, Any]:
    """Parsed once per distinct entry: the items one run saw share it, so a re-load parses few."""
    source, scope, v = entry.split(SEP, 2)
    first_seen, last_seen, last_run, missed, status = load_json(v)
    return source, scope, first_seen, last_seen, last_run, int(missed), status


def _parse_sighting(entry: str) -> Sighting:
    return Sighting(*_sighting_fields(entry))  # a new object each time: planners update sightings in place


def parse_sightings(entries: list[str] | None) -> dict[tuple[str, str], Sighting]:
    out: dict[tuple[str, str], Sighting] = {}
    for entry in sorted(entries or ()):
        s = _parse_sighting(entry)
        out[(s.source, s.scope)] = s
    return out


def prov_json(prov: dict[str, dict[str, AttrValue]]) -> str:
    """The SQLite store's form, {attr: {source: [value, run_id, set_at]}}: what a dump carries."""
    return dump_json({a: {s: [v.value, v.run_id, v.set_at] for s, v in srcs.items()} for a, srcs in prov.items()})


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    """Equal and of one JSON type (True and 1 are not the same value here)."""
    if a is b:  # the usual case: a new CI's provenance holds the very objects of its attributes
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list | dict):
        return dump_json(a) == dump_json(b)
    return bool(a == b)


def prov_blob(prov: dict[str, dict[str, AttrValue]], attrs: dict[str, Any], cls: str) -> str:
    """Provenance as stored here: ``[stamps, {attr: {source: stamp | [value, stamp]}}]``.

    A stamp is an index into ``stamps`` (``[run_id, set_at]`` pairs); a value equal to the CI's
    current one (its class for ``@class``) is not repeated. Most CIs have one source and one run,
    so this is about a third of the SQLite form, and provenance was the largest property written.
    """
    stamps: dict[tuple[Any, Any], int] = {}
    out: dict[str, dict[str, Any]] = {}
    for attr, srcs in prov.items():
        current = cls if attr == CLASS_ATTR else attrs.get(attr, _ABSENT)
        entry: dict[str, Any] = {}
        for source, v in srcs.items():
            stamp = stamps.setdefault((v.run_id, v.set_at), len(stamps))
            entry[source] = stamp if _same(v.value, current) else [v.value, stamp]
        out[attr] = entry
    return dump_json([[list(k) for k in stamps], out])


def parse_provenance(blob: str | None, attrs: dict[str, Any], cls: str) -> dict[str, dict[str, AttrValue]]:
    """Either form: the compact one written here, or the SQLite one (stores restored before it)."""
    data = load_json(blob) or {}
    out: dict[str, dict[str, AttrValue]] = {}
    if isinstance(data, dict):
        for attr, by_source in data.items():
            out[attr] = {src: AttrValue(src, v[0], v[1], v[2]) for src, v in by_source.items()}
        return out
    stamps, entries = data
    for attr, by_source in entries.items():
        current = cls if attr == CLASS_ATTR else attrs.get(attr)
        values: dict[str, AttrValue] = {}
        for source, e in by_source.items():
            if isinstance(e, int):
                value, stamp = (list(current) if isinstance(current, list)
                                else dict(current) if isinstance(current, dict) else current), e
            else:
                value, stamp = e
            run_id, set_at = stamps[stamp]
            values[source] = AttrValue(source, value, run_id, set_at)
        out[attr] = values
    return out


def ci_state(ci: dict[str, Any]) -> CIState:
    attrs = load_attrs(ci["attrs"])
    return CIState(ci["id"], ci["class"], ci["name"], ci["status"], attrs, ci["created_at"], ci["updated_at"],
                   parse_provenance(ci["provenance"], attrs, ci["class"]), parse_sightings(ci.get("sg")))


def rel_state(r: dict[str, Any], src: str, dst: str) -> RelState:
    """Provenance is read only where the map asks for it (``prov``, in the SQLite form)."""
    prov = r.get("prov")
    provenance = (None if "prov" not in r else {} if not prov else
                  {a: {s: AttrValue(s, v[0], v[1], v[2]) for s, v in srcs.items()}
                   for a, srcs in load_json(prov).items()})
    return RelState(r["id"], r["type"], src, dst, load_attrs(r["attrs"]), r["status"], r["created_at"],
                    r["updated_at"], parse_sightings(r.get("sg")), provenance)



def conflict_row(c: Conflict) -> dict[str, Any]:
    return {"id": c.id, "at": c.at, "source": c.source, "run_id": c.run_id, "item": c.item,
            "item_class": c.item_class, "keys": dump_json(c.keys), "ci_ids": dump_json(c.ci_ids),
            "attrs": dump_json(c.attrs)}


def pack_text(rows: list[list[Any]]) -> str:
    """An EventPack's text for rows ``[seq, at, ci_id, peer_id, kind, source, run_id, rel_id, attr, old,
    new, actor]``: ``{"h": [at, source, run_id, actor], "e": [...]}``, where an event sharing the header's
    time, source, run and actor (nearly all: a pack is one batch's) drops those four fields."""
    head = rows[0]
    h = (head[1], head[5], head[6], head[11])
    out = [[r[0], r[2], r[3], r[4], r[7], r[8], r[9], r[10]] if (r[1], r[5], r[6], r[11]) == h else r for r in rows]
    return dump_json({"h": list(h), "e": out})


def pack_events(b: str) -> list[Event]:
    """The events of one EventPack (either text form: a plain list of full rows was written before)."""
    data = json.loads(b)
    if isinstance(data, dict):
        at0, source0, run0, actor0 = data["h"]
        rows = [[r[0], at0, r[1], r[2], r[3], source0, run0, r[4], r[5], r[6], r[7], actor0] if len(r) == 8 else r
                for r in data["e"]]
    else:
        rows = data
    return [Event(at=at, kind=kind, source=source, run_id=run_id, ci_id=ci_id, rel_id=rel_id, peer_id=peer_id,
                  attr=attr, old=old, new=new, actor=actor, seq=seq)
            for seq, at, ci_id, peer_id, kind, source, run_id, rel_id, attr, old, new, actor in rows]
