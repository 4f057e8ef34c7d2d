"""Moving a CMDB between stores: export to a file, import from one, migrate directly, compare.

Every store dumps the same record kinds with the same row shapes (the SQLite store's tables), so
any store restores any other's dump. The file form is JSON Lines: a header line naming the format
and its version, then one ``{"kind": ..., "row": ...}`` per record; it streams both ways, so an
estate never has to fit in memory to move.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cmdb.errors import BadInputError, ConfigError, StoreError, StoreNotEmptyError
from cmdb.store.base import GraphStore, iso

DUMP_FORMAT = "cmdb-dump"
DUMP_VERSION = 1
MAX_DIFFS_PER_KIND = 20


Record = tuple[str, dict[str, Any]]


def _counted(records: Iterable[Record], counts: Counter[str]) -> Iterator[Record]:
    for kind, row in records:
        counts[kind] += 1
        yield kind, row


def export_store(store: GraphStore, path: str | Path) -> dict[str, int]:
    """Write ``store`` to ``path`` as JSON Lines; returns records per kind. The file appears whole or not at all."""
    path = Path(path)
    counts: Counter[str] = Counter()
    header = {"format": DUMP_FORMAT, "version": DUMP_VERSION, "exported_at": iso(datetime.now(UTC)),
              "store": store.url}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")
            for kind, row in _counted(store.dump(), counts):
                fh.write(json.dumps({"kind": kind, "row": row}, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StoreError(f"cannot write the export {path}: {exc.strerror}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dict(counts)


def read_dump(path: str | Path) -> Iterator[Record]:
    """Records of an export file; errors name the line."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"cannot read the dump {path}: {exc.strerror}") from None
    with fh:
        first = fh.readline()
        try:
            header = json.loads(first)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != DUMP_FORMAT:
            raise BadInputError(f"{path} is not a CMDB dump (its first line must be the {DUMP_FORMAT} header)")
        if header.get("version") != DUMP_VERSION:
            raise BadInputError(f"{path} is a version {header.get('version')} dump; this CMDB reads version "
                                f"{DUMP_VERSION}: export it again with this version")
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                kind, row = rec["kind"], rec["row"]
            except (ValueError, KeyError, TypeError):
                raise BadInputError(f"{path}:{lineno}: not a {{\"kind\": ..., \"row\": ...}} record") from None
            if not isinstance(kind, str) or not isinstance(row, dict):
                raise BadInputError(f"{path}:{lineno}: kind must be a string and row a mapping")
            yield kind, row


def import_dump(store: GraphStore, path: str | Path) -> dict[str, int]:
    """Restore an export file into an empty ``store``; returns records per kind."""
    counts: Counter[str] = Counter()
    store.restore(_counted(read_dump(path), counts))
    return dict(counts)


def is_empty(store: GraphStore) -> bool:
    stats = store.stats()
    return not (stats["cis"] or stats["relationships"] or stats["events"] or stats["runs"] or stats["conflicts"])


def migrate(src: GraphStore, dst: GraphStore, replace: bool = False) -> dict[str, int]:
    """Copy everything from ``src`` into ``dst`` (dump, then restore); returns records per kind.

    ``dst`` must be empty unless ``replace`` is set, which clears it first (stores without
    ``clear()`` cannot be replaced: point at a new, empty store instead).
    """
    if not is_empty(dst):
        if not replace:
            raise StoreNotEmptyError(
                f"{dst.url} is not empty; migrate into an empty store or ask to replace its contents")
        clear = getattr(dst, "clear", None)
        if clear is None:
            raise ConfigError(f"{dst.url} cannot be cleared in place; migrate into a new, empty store instead")
        clear()
    counts: Counter[str] = Counter()
    dst.restore(_counted(src.dump(), counts))
    return dict(counts)


# -- comparison ----------------------------------------------------------------------------------
def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _normal(store: GraphStore) -> dict[str, Any]:
    """A store's content keyed by identity, JSON columns decoded, event order kept and seq dropped."""
    out: dict[str, Any] = {"ci": {}, "ci_key": {}, "sighting": {}, "rel": {}, "event": [], "conflict": {},
                           "run": {}, "discovery_run": {}, "task": {}, "outbox": {}, "lease": {},
                           "schema_extension": {}, "rel_prov": {}, "conflict_resolution": {}, "conflict_closure": {}}
    events: list[tuple[Any, ...]] = []
    for kind, row in store.dump():
        if kind == "ci":
            out["ci"][row["id"]] = {**row, "attrs": _json(row["attrs"]), "provenance": _json(row.get("provenance"))}
        elif kind == "ci_key":
            out["ci_key"][row["key"]] = row["ci_id"]
        elif kind == "sighting":
            key = (row["kind"], row["item_id"], row["source"], row["scope"])
            out["sighting"][key] = {k: row[k] for k in ("first_seen", "last_seen", "last_run", "missed", "status")}
        elif kind == "rel":
            out["rel"][row["id"]] = {**row, "attrs": _json(row["attrs"])}
        elif kind == "event":
            body = {k: row.get(k) for k in ("at", "kind", "source", "run_id", "ci_id", "rel_id", "peer_id", "attr",
                                             "actor")}
            body["old"], body["new"] = _json(row.get("old")), _json(row.get("new"))
            events.append((row["at"], row.get("seq") or 0, len(events), body))
        elif kind == "conflict":
            out["conflict"][row["id"]] = {**row, **{k: _json(row[k]) for k in ("keys", "ci_ids", "attrs")}}
        elif kind == "run":
            out["run"][row["run_id"]] = {**row, "complete": bool(row["complete"]), "stats": _json(row["stats"])}
        elif kind == "discovery_run":
            out["discovery_run"][row["run_id"]] = {**row, "data": _json(row["data"])}
        elif kind in ("task", "outbox"):
            out[kind][row["id"]] = {**row, "data": _json(row["data"])}
        elif kind == "lease":
            out["lease"][row["name"]] = row
        elif kind == "schema_extension":
            out["schema_extension"][row["name"]] = {k: row.get(k) for k in ("text", "seq", "added_at", "added_by")}
        elif kind == "rel_prov":
            out["rel_prov"][row["rel_id"]] = _json(row["provenance"])
        elif kind in ("conflict_resolution", "conflict_closure"):
            out[kind][row["id"]] = {k: _json(v) if k == "ci_ids" else v for k, v in row.items() if v is not None}
    out["event"] = [e[3] for e in sorted(events, key=lambda e: e[:3])]
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


def compare_stores(a: GraphStore, b: GraphStore) -> list[str]:
    """Differences between two stores' contents (empty when they hold the same CMDB).

    CIs with attributes, provenance and sightings, identity keys, relationships, runs and
    conflicts are compared by id; history is compared as a sequence in (time, seq) order, ignoring
    the seq numbers themselves.
    """
    na, nb = _normal(a), _normal(b)
    diffs: list[str] = []
    for kind in ("ci", "ci_key", "sighting", "rel", "rel_prov", "conflict", "conflict_resolution", "conflict_closure",
                 "run", "discovery_run", "task", "outbox", "lease", "schema_extension"):
        da, db = na[kind], nb[kind]
        found: list[str] = []
        for key in sorted(set(da) | set(db), key=str):
            if key not in db:
                found.append(f"{kind} {key}: only in {a.url}")
            elif key not in da:
                found.append(f"{kind} {key}: only in {b.url}")
            elif da[key] != db[key]:
                va, vb = da[key], db[key]
                if isinstance(va, dict) and isinstance(vb, dict):
                    fields = sorted(f for f in set(va) | set(vb) if va.get(f) != vb.get(f))
                    detail = "; ".join(f"{f}: {_short(va.get(f))} != {_short(vb.get(f))}" for f in fields)
                else:
                    detail = f"{_short(va)} != {_short(vb)}"
                found.append(f"{kind} {key}: {detail}")
        diffs.extend(found[:MAX_DIFFS_PER_KIND])
        if len(found) > MAX_DIFFS_PER_KIND:
            diffs.append(f"{kind}: {len(found) - MAX_DIFFS_PER_KIND} more difference(s)")
    ea, eb = na["event"], nb["event"]
    if len(ea) != len(eb):
        diffs.append(f"event: {a.url} has {len(ea)} events, {b.url} has {len(eb)}")
    mismatched = [i for i, (x, y) in enumerate(zip(ea, eb, strict=False)) if x != y]
    for i in mismatched[:MAX_DIFFS_PER_KIND]:
        diffs.append(f"event #{i + 1}: {_short(ea[i])} != {_short(eb[i])}")
    if len(mismatched) > MAX_DIFFS_PER_KIND:
        diffs.append(f"event: {len(mismatched) - MAX_DIFFS_PER_KIND} more difference(s)")
    return diffs
