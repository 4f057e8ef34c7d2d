"""What a caller may see and write: partitions (and collector reach) applied to every CI read and write.

A token limited to partitions sees only CIs of those partitions (``cmdb.partitions``). Everything
else answers as if it did not exist: a hidden CI is a 404 with the very text of a missing one, a
search counts only visible CIs, history and relationships leave out whatever touches a hidden CI,
and an impact answer counts hidden CIs without naming them and shows a placeholder on a path that
runs through one. Writes are refused (403) when an item would land in, or identifies a CI of, a
partition the token may not write; collector tokens also only write their sources and scopes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from fastapi import HTTPException

from api.auth import Principal
from cmdb.batch import Batch, IdentityRef
from cmdb.errors import BadInputError, CmdbError, NotFoundError
from cmdb.identity import identity_keys, single_value_keys
from cmdb.ingest import ingest, scope_covers
from cmdb.model import Schema
from cmdb.partitions import DEFAULT_PARTITION, PARTITION_ATTR, PartitionRules, assign_partitions, partition_of
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import CIState, Event, GraphStore, Page, RelState, SearchQuery

HIDDEN = "(hidden)"  # stands for a CI on an impact path that the caller may not see
SCAN_PAGE = 1000


def can_see(principal: Principal, ci: CIState) -> bool:
    return principal.partitions is None or partition_of(ci.attrs) in principal.partitions


def not_found(ref: str) -> NotFoundError:
    """The one answer for a CI that is missing or hidden: the same words either way."""
    return NotFoundError(f"no CI matches {ref!r} (tried id, name and identity keys)")


def find_visible_ci(store: GraphStore, schema: Schema, principal: Principal, ref: str,
                    brief: bool = False) -> CIState:
    """A CI by id, display name or single-attribute identity value, among those the caller may see.

    Hidden CIs take no part: a name shared with a hidden CI is not ambiguous, and a hidden match
    raises the very NotFoundError of a missing one. ``brief``: without provenance and sightings."""
    get_cis = store.get_cis_brief if brief else store.get_cis
    ci = get_cis([ref]).get(ref)
    if ci is not None and can_see(principal, ci):
        return ci
    named = [c for c in get_cis(store.find_by_name(ref)).values() if can_see(principal, c)]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = sorted(c.id for c in named)
        raise BadInputError(f"{ref!r} names {len(ids)} CIs ({', '.join(ids[:5])}); use a CI id")
    for k in single_value_keys(schema, ref):
        found = store.find_by_key(k)
        if found is not None:
            hit = get_cis([found]).get(found)
            if hit is not None and can_see(principal, hit):
                return hit
    raise not_found(ref)


def visible_ids(store: GraphStore, principal: Principal, ids: Iterable[str]) -> set[str]:
    """The ids among ``ids`` the caller may see (one bulk read; everything when not limited)."""
    wanted = set(ids)
    if principal.partitions is None:
        return wanted
    return {i for i, c in store.get_cis(wanted).items() if can_see(principal, c)}


def search_visible(store: GraphStore, principal: Principal, query: SearchQuery) -> Page:
    """``store.search`` of only the visible CIs, with an exact total and the same order.

    A ``partition`` filter narrows the caller's partitions (``default`` also matches CIs without the
    attribute). One partition other than ``default`` is a filter the store runs and pages itself;
    otherwise the matches are walked in the store's order, a page of ``SCAN_PAGE`` at a time, and
    the visible ones kept (a cost proportional to the matches, paid only by limited tokens).
    """
    allowed = principal.partitions
    if PARTITION_ATTR in query.attrs:
        asked = str(query.attrs[PARTITION_ATTR])
        if allowed is not None and asked not in allowed:
            return Page([], 0, query.limit, query.offset)
        allowed = frozenset({asked})
        query = replace(query, attrs={k: v for k, v in query.attrs.items() if k != PARTITION_ATTR})
    if allowed is None:
        return store.search(query)
    if len(allowed) == 1 and DEFAULT_PARTITION not in allowed:
        return store.search(replace(query, attrs={**query.attrs, PARTITION_ATTR: next(iter(allowed))}))
    kept: list[CIState] = []
    offset, total = 0, 0
    while True:
        page = store.search(replace(query, limit=SCAN_PAGE, offset=offset))
        for ci in page.items:
            if partition_of(ci.attrs) in allowed:
                if query.offset <= total < query.offset + query.limit:
                    kept.append(ci)
                total += 1
        offset += len(page.items)
        if not page.items or offset >= page.total:
            break
    return Page(kept, total, query.limit, query.offset)


def visible_relationships(store: GraphStore, principal: Principal, rels: list[RelState]) -> list[RelState]:
    """Relationships whose both ends the caller may see."""
    if principal.partitions is None:
        return rels
    seen = visible_ids(store, principal, {r.src for r in rels} | {r.dst for r in rels})
    return [r for r in rels if r.src in seen and r.dst in seen]


def visible_events(store: GraphStore, principal: Principal, events: list[Event]) -> list[Event]:
    """History events that touch only CIs the caller may see."""
    if principal.partitions is None:
        return events
    ids = {e.ci_id for e in events if e.ci_id} | {e.peer_id for e in events if e.peer_id}
    seen = visible_ids(store, principal, ids)
    return [e for e in events if (e.ci_id is None or e.ci_id in seen) and (e.peer_id is None or e.peer_id in seen)]


# -- writes ----------------------------------------------------------------------------------------
def _forbid(detail: str) -> HTTPException:
    return HTTPException(status_code=403, detail=detail)


def check_batch_allowed(store: GraphStore, schema: Schema, principal: Principal, batch: Batch,
                        rules: PartitionRules | None = None) -> None:
    """Raise 403 unless ``principal`` may write every item of ``batch``; fills in partitions.

    Items without a partition get the configured rule's; else an item naming a stored CI leaves its
    partition alone, and a new one gets the token's only partition. The check of existing CIs reads
    the store before ingest: a CI moved into a hidden partition in
    between is the one race left, and only an admin or an unlimited token can move one.
    """
    if principal.role == "collector":
        if principal.sources is None or not _source_allowed(batch.source, principal.sources):
            raise _forbid(f"token {principal.name!r} may not write batches of source {batch.source!r}; "
                          f"it may write: {', '.join(sorted(principal.sources or ())) or 'nothing'}")
        if principal.scopes is not None and not any(scope_covers(s, batch.scope or "") for s in principal.scopes):
            raise _forbid(f"token {principal.name!r} may not write scope {batch.scope or '(none)'!r}; it may write"
                          f" scopes {', '.join(sorted(principal.scopes)) or 'none'}")
    parts = principal.partitions
    if parts is None:
        return
    assign_partitions(batch, rules)
    # Which stored CI each item and each identity reference names (a key look-up each).
    item_hits: list[set[str]] = []
    where: dict[str, str] = {}
    for rec in batch.cis:
        hits = _stored(store, _keys(schema, rec.cls, rec.attrs))
        item_hits.append(hits)
        where.update((h, rec.describe()) for h in hits)
    for ref in batch.retire_cis:  # a manual retirement names stored CIs too
        where.update((h, f"retire {ref.describe()}") for h in _stored(store, _keys(schema, ref.cls, dict(ref.attrs))))
    for rel in [*batch.rels, *batch.retire_rels]:
        for end in (rel.src, rel.dst):
            if isinstance(end, IdentityRef):
                where.update((h, rel.describe()) for h in _stored(store, _keys(schema, end.cls, dict(end.attrs))))
    for ci_id, ci in store.get_cis(where).items():
        if not can_see(principal, ci):
            raise _forbid(f"{where[ci_id]} identifies a CI outside the partitions token {principal.name!r} may"
                          " write; nothing of this batch was written")
    only = next(iter(parts)) if len(parts) == 1 else None
    for rec, hits in zip(batch.cis, item_hits, strict=True):
        if not rec.attrs.get(PARTITION_ATTR):
            if hits:
                continue  # an existing CI (visible, checked above) keeps its partition
            if only is not None and only != DEFAULT_PARTITION:
                rec.attrs = {**rec.attrs, PARTITION_ATTR: only}
        p = partition_of(rec.attrs)
        if p not in parts:
            raise _forbid(f"{rec.describe()}: partition {p!r} is not one token {principal.name!r} may write "
                          f"({', '.join(sorted(parts)) or 'none'}); give the item a partition the token may"
                          " write; nothing of this batch was written")


def _stored(store: GraphStore, keys: list[str]) -> set[str]:
    return {ci_id for ci_id in (store.find_by_key(k) for k in keys) if ci_id is not None}


class BatchRefusedError(CmdbError):
    """A discovery run's batch that its starter's token may not write (the target's outcome: rejected)."""


def checked_sink(store: GraphStore, schema: Schema, config: ReconcileConfig,
                 principal: Principal) -> Callable[[Batch], dict[str, Any]] | None:
    """For ``run_discovery(sink=...)`` of a run started over the API: each batch is checked against the
    starter's partitions before ``ingest`` (None for an unlimited token: plain ingest)."""
    if principal.partitions is None and principal.role != "collector":
        return None

    def sink(batch: Batch) -> dict[str, Any]:
        try:
            check_batch_allowed(store, schema, principal, batch)
        except HTTPException as exc:
            raise BatchRefusedError(str(exc.detail)) from None
        result = ingest(store, batch, schema=schema, config=config)
        return {"run_id": result.run_id, **result.summary()}

    return sink


def _source_allowed(source: str, allowed: Iterable[str]) -> bool:
    return any(source == a or (a.endswith(":*") and source.startswith(a[:-1])) for a in allowed)


def _keys(schema: Schema, cls: str, attrs: dict[str, Any]) -> list[str]:
    try:
        return list(identity_keys(schema, cls, schema.validate(cls, attrs)))
    except (CmdbError, BadInputError):
        return []  # ingest reports the bad item itself


# -- impact ----------------------------------------------------------------------------------------
def redact_impact(store: GraphStore, principal: Principal, doc: dict[str, Any],
                  services_path_ids: list[list[str]] | None = None) -> dict[str, Any]:
    """An impact answer (incident or change JSON) with what the caller may not see taken out.

    Hidden CIs are counted under ``hidden``; a path through one shows ``(hidden)`` in its place.
    ``services_path_ids`` gives the change report's path ids (its JSON carries only names).
    """
    if principal.partitions is None:
        return doc
    ids: set[str] = set()
    services = doc.get("services") or []
    paths = services_path_ids or [list(s.get("path_ids") or []) for s in services]
    for s, path in zip(services, paths, strict=False):
        ids.update(path)
        if s.get("id"):
            ids.add(s["id"])
    for key in ("affected", "causes", "cis", "in_maintenance"):
        ids.update(x["id"] for x in doc.get(key) or [] if x.get("id"))
    for sh in doc.get("stakeholders") or []:
        ids.update(r["ci_id"] for r in sh.get("reasons") or [] if r.get("ci_id"))
        if sh.get("id"):
            ids.add(sh["id"])
    for e in doc.get("recent_changes") or []:
        ids.update(x for x in (e.get("ci_id"), e.get("peer_id")) if x)
    for rec in (doc.get("related_incidents") or []) + (doc.get("change_records") or []):
        ids.update(rec.get("ci_ids") or [])
    seen = visible_ids(store, principal, ids)
    hidden: dict[str, int] = {}
    out = dict(doc)

    def keep(key: str, items: list[Any], ok: Any) -> list[Any]:
        kept = [x for x in items if ok(x)]
        if len(kept) != len(items):
            hidden[key] = len(items) - len(kept)
        return kept

    new_services = []
    for s, path in zip(services, paths, strict=False):
        if s.get("id") is not None and s["id"] not in seen:
            continue
        if path and path[-1] not in seen:
            continue  # a change report's service is the last CI of its path
        s = dict(s)
        if path:
            s["path"] = [name if pid in seen else HIDDEN for name, pid in zip(s.get("path") or [], path, strict=False)]
            if "path_ids" in s:
                s["path_ids"] = [pid if pid in seen else None for pid in path]
        new_services.append(s)
    if len(new_services) != len(services):
        hidden["services"] = len(services) - len(new_services)
    out["services"] = new_services
    for key in ("affected", "causes", "cis", "in_maintenance"):
        if key in doc:
            out[key] = keep(key, doc[key], lambda x: x.get("id") in seen)
    if "stakeholders" in doc:
        people = []
        for sh in doc["stakeholders"]:
            if sh.get("id") and sh["id"] not in seen:
                continue  # the person or team is itself a CI of a hidden partition
            reasons = [r for r in sh.get("reasons") or [] if r.get("ci_id") in seen]
            if reasons or not sh.get("reasons"):
                people.append({**sh, "reasons": reasons})
        if len(people) != len(doc["stakeholders"]):
            hidden["stakeholders"] = len(doc["stakeholders"]) - len(people)
        out["stakeholders"] = people
    if "recent_changes" in doc:
        out["recent_changes"] = keep("recent_changes", doc["recent_changes"],
                                     lambda e: all(x is None or x in seen for x in (e.get("ci_id"), e.get("peer_id"))))
    if doc.get("reasons"):
        # Free-text reasons (a change's risk) may quote a path: hidden names give way to the placeholder.
        gone = sorted((c.name for c in store.get_cis(ids - seen).values() if c.name), key=len, reverse=True)
        reasons = []
        for text in doc["reasons"]:
            for name in gone:
                text = text.replace(name, HIDDEN)
            reasons.append(text)
        out["reasons"] = reasons
    for key in ("related_incidents", "change_records"):
        if key in doc:
            out[key] = [{**r, "ci_ids": [c for c in r.get("ci_ids") or [] if c in seen]} for r in doc[key]]
    out["hidden"] = hidden
    return out
