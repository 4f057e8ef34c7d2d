"""The schema of a store: the core schema plus the extensions kept in that store.

Extensions are added with ``cmdb schema add FILE`` and travel with the data (dumps, migrations,
every process that opens the store), so what a relationship type means to impact analysis does not
change with a process's environment. ``store_schema(store)`` is what every command with a store at
hand uses; ``cmdb.model.default_schema`` remains for code without one.

``CMDB_SCHEMA`` (colon-separated extension files, the old way) is a deprecated fallback: it is read
only for a store that holds no extension yet, with a warning naming the command that moves the files
into the store; once a store holds extensions the variable is ignored (with a warning if set).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from cmdb.errors import BadInputError, NotFoundError, SchemaError
from cmdb.model import Schema, default_schema, parse_schema_text
from cmdb.store.base import GraphStore, SearchQuery, iso
from cmdb.store.schema_ext import SchemaExtension

log = logging.getLogger("cmdb.schema")
ENV = "CMDB_SCHEMA"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_cache: dict[tuple[tuple[str, str], ...], Schema] = {}
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def build_schema(extensions: list[SchemaExtension]) -> Schema:
    """Core plus ``extensions`` in order; built once per distinct set of texts."""
    key = tuple((e.name, hashlib.sha256(e.text.encode()).hexdigest()) for e in extensions)
    schema = _cache.get(key)
    if schema is None:
        schema = Schema.from_documents(
            (f"schema extension {e.name!r}", parse_schema_text(e.text, repr(e.name))) for e in extensions)
        _cache[key] = schema
    return schema


def store_schema(store: GraphStore) -> Schema:
    """The schema ``store``'s data is written against (see the module docstring for ``CMDB_SCHEMA``)."""
    extensions = store.schema_extensions()
    env = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    if not extensions:
        if env:
            _warn_once("fallback", f"{ENV} is deprecated: keep the extensions in the store instead, so every"
                       f" process reads the same schema: cmdb schema add {' '.join(env)}")
        return default_schema()
    if env:
        _warn_once("ignored", f"{ENV} is ignored: this store holds its own schema extensions"
                   " (cmdb schema list); unset it")
    return build_schema(extensions)


def undefined_in_use(store: GraphStore, schema: Schema) -> dict[str, list[str]]:
    """Classes and relationship types the store's data uses that its schema does not define (data written
    while a ``CMDB_SCHEMA`` file was set, say): the extensions to ``cmdb schema add``."""
    st = store.stats()
    return {"classes": sorted(c for c in st["cis_by_class"] if c not in schema.classes),
            "relationships": sorted(t for t in st["relationships_by_type"] if t not in schema.relationships)}


def _check_unused(store: GraphStore, before: Schema, after: Schema, doing: str) -> None:
    """Refuse a change that drops a class or relationship type the store still holds data of."""
    classes = sorted(set(before.classes) - set(after.classes))
    if classes and store.search(SearchQuery(classes=classes, limit=1)).total:
        raise BadInputError(f"{doing} would drop class(es) {', '.join(classes)}, which CIs in this store still"
                            " use; keep them in the extension")
    for rtype in sorted(set(before.relationships) - set(after.relationships)):
        if store.relationships(type=rtype, include_retired=True, limit=1):
            raise BadInputError(f"{doing} would drop relationship type {rtype}, which this store still holds;"
                                " keep it in the extension")


def add_extension(store: GraphStore, path: Path, name: str | None = None, actor: str | None = None,
                  now: datetime | None = None) -> tuple[SchemaExtension, bool]:
    """Validate ``path`` against the core and the store's other extensions and keep it in the store
    under ``name`` (default: the file's stem). Returns the stored extension and whether it replaced one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read schema extension {path}: {exc}") from None
    name = name or path.stem
    if not _NAME.fullmatch(name):
        raise BadInputError(f"schema extension name {name!r}: use letters, digits, '.', '_' or '-' (--name NAME)")
    parse_schema_text(text, str(path))
    existing = store.schema_extensions()
    replaced = any(e.name == name for e in existing)
    candidate = SchemaExtension(name, text, iso(now or datetime.now(UTC)), actor)
    merged = [candidate if e.name == name else e for e in existing] + ([] if replaced else [candidate])
    try:
        after = build_schema(merged)
    except SchemaError as exc:
        raise SchemaError(f"{path} does not fit this store's schema: {exc}; nothing was stored") from None
    if replaced:
        _check_unused(store, build_schema(existing), after, f"replacing schema extension {name!r}")
    return store.put_schema_extension(candidate), replaced


def remove_extension(store: GraphStore, name: str) -> None:
    """Drop an extension the store's data no longer needs (and no other extension builds on)."""
    existing = store.schema_extensions()
    if not any(e.name == name for e in existing):
        raise NotFoundError(f"this store holds no schema extension {name!r}; see cmdb schema list")
    rest = [e for e in existing if e.name != name]
    try:
        after = build_schema(rest)
    except SchemaError as exc:
        raise SchemaError(f"another extension builds on {name!r}: {exc}; remove that one first") from None
    _check_unused(store, build_schema(existing), after, f"removing schema extension {name!r}")
    store.remove_schema_extension(name)
