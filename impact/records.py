"""Minimal incident, change and freeze-period records, stored as CIs through ``ingest``.

Records are CIs of the classes in ``impact/schema/records.yaml`` (Incident, Change, FreezePeriod)
with ``AFFECTS`` edges to the CIs they touch, so they go through the one write door (history and
provenance included) and every store keeps them without new tables. They answer: open incidents
touching the same CIs or services, other changes in an overlapping window, recent failed changes
and incidents, CIs in maintenance, freeze periods.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import NotFoundError
from cmdb.history import parse_time
from cmdb.ingest import ingest
from cmdb.model import Schema, default_schema
from cmdb.schema_store import build_schema, store_schema
from cmdb.store.base import CIState, GraphStore, SearchQuery
from cmdb.store.schema_ext import SchemaExtension

RECORDS_SCHEMA = Path(__file__).parent / "schema" / "records.yaml"
SOURCE = "impact"
ACTIVE_CHANGE_STATES = frozenset({"requested", "approved", "in_progress"})
_env_schemas: dict[str, Schema] = {}


def records_schema(store: GraphStore | None = None) -> Schema:
    """The store's schema (core plus its stored extensions, ``cmdb.schema_store``) plus the record classes,
    unless already present; without a store, the core's default schema plus them."""
    base = store_schema(store) if store is not None else default_schema()
    if "Incident" in base.classes:
        return base
    exts = store.schema_extensions() if store is not None else []
    if exts:
        records = SchemaExtension("impact-records", RECORDS_SCHEMA.read_text(encoding="utf-8"), "")
        return build_schema([*exts, records])
    env = os.environ.get("CMDB_SCHEMA", "")  # the deprecated fallback, as ``store_schema`` reads it
    if env not in _env_schemas:
        _env_schemas[env] = Schema.load([*(p for p in env.split(os.pathsep) if p), RECORDS_SCHEMA])
    return _env_schemas[env]


@dataclass(frozen=True)
class Record:
    """An Incident or Change as impact analysis reads it."""

    id: str
    cls: str
    key: str
    name: str
    state: str
    start: str | None
    end: str | None
    change_type: str | None
    ci_ids: tuple[str, ...]


def _identity_ref(schema: Schema, ci: CIState) -> dict[str, Any]:
    """A batch reference ``{class: ..., <key attr>: value}`` to an existing CI, from its first complete key."""
    keys = sorted(schema.ci_class(ci.cls).identity, key=lambda k: any(isinstance(ci.attrs.get(a), list) for a in k))
    for key in keys:
        if all(ci.attrs.get(a) not in (None, []) for a in key):
            return {"class": ci.cls, **{a: ci.attrs[a] for a in key}}
    raise NotFoundError(f"CI {ci.name or ci.id} has no identity attributes to reference it by")


def _write(store: GraphStore, cls: str, attrs: dict[str, Any], ci_ids: Iterable[str], actor: str | None) -> str:
    schema = records_schema(store)
    cis = store.get_cis(list(ci_ids))
    rels = [{"type": "AFFECTS", "from": "rec", "to": _identity_ref(schema, c)} for c in cis.values()]
    batch = Batch.from_dict({"source": SOURCE, "cis": [{"ref": "rec", "class": cls, **attrs}],
                             "relationships": rels}, origin=f"{cls} {attrs.get('key') or attrs.get('name')}")
    batch.actor = actor
    return ingest(store, batch, schema=schema).ci_ids["rec"]


def record_incident(store: GraphStore, key: str, ci_ids: Sequence[str], opened_at: str, state: str = "open",
                    summary: str | None = None, priority: str | None = None, actor: str | None = None) -> str:
    """Store (or update) incident ``key`` touching ``ci_ids``; returns its CI id."""
    attrs = {"key": key, "name": key, "state": state, "opened_at": opened_at, "description": summary,
             "priority": priority}
    return _write(store, "Incident", {k: v for k, v in attrs.items() if v is not None}, ci_ids, actor)


def record_change(store: GraphStore, key: str, ci_ids: Sequence[str], start: str, end: str,
                  change_type: str = "normal", state: str = "requested", summary: str | None = None,
                  actor: str | None = None) -> str:
    """Store (or update) change ``key`` on ``ci_ids`` in the window [start, end]; returns its CI id."""
    attrs = {"key": key, "name": key, "state": state, "change_type": change_type, "start": start, "end": end,
             "description": summary}
    return _write(store, "Change", {k: v for k, v in attrs.items() if v is not None}, ci_ids, actor)


def record_freeze(store: GraphStore, name: str, start: str, end: str, actor: str | None = None) -> str:
    """Store a freeze (blackout) period in which changes conflict."""
    return _write(store, "FreezePeriod", {"name": name, "start": start, "end": end}, (), actor)


def records_on(store: GraphStore, ci_ids: Iterable[str], cls: str | None = None,
               affects: Mapping[str, Sequence[str]] | None = None) -> list[Record]:
    """Incidents and changes with an AFFECTS edge to any of ``ci_ids``; ``affects`` (CI -> record ids, the
    warm index's) stands in for reading the edges from the store."""
    touched: dict[str, set[str]] = {}
    if affects is not None:
        for ci in set(ci_ids):
            for rec_id in affects.get(ci, ()):
                touched.setdefault(rec_id, set()).add(ci)
    else:
        for rel in store.neighbors(sorted(set(ci_ids)), ["AFFECTS"], "in"):
            touched.setdefault(rel.src, set()).add(rel.dst)
    out = []
    for rid, rec in store.get_cis(touched).items():
        if rec.status == "retired" or (cls is not None and rec.cls != cls) or rec.cls not in ("Incident", "Change"):
            continue
        a = rec.attrs
        out.append(Record(rid, rec.cls, str(a.get("key", rid)), rec.name or rid, str(a.get("state", "")),
                          a.get("start") or a.get("opened_at"), a.get("end") or a.get("resolved_at"),
                          a.get("change_type"), tuple(sorted(touched[rid]))))
    return sorted(out, key=lambda r: (r.start or "", r.key))


def freeze_periods(store: GraphStore) -> list[tuple[str, str, str]]:
    """(name, start, end) of every freeze period."""
    page = store.search(SearchQuery(classes=["FreezePeriod"], limit=10_000))
    return sorted((c.name or c.id, str(c.attrs["start"]), str(c.attrs["end"])) for c in page.items
                  if c.status != "retired" and c.attrs.get("start") and c.attrs.get("end"))


def overlaps(a_start: str, a_end: str, b_start: str | None, b_end: str | None) -> bool:
    """Whether two windows overlap (times normalised first: stored and typed forms differ in precision)."""
    if not b_start or not b_end:
        return False
    return parse_time(a_start) < parse_time(b_end) and parse_time(b_start) < parse_time(a_end)


def covers(start: str | None, end: str | None, at: str) -> bool:
    """Whether the window [start, end] contains ``at``."""
    return bool(start and end) and parse_time(str(start)) <= parse_time(at) <= parse_time(str(end))
