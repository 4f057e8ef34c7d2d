"""Manual corrections: set attributes, retire a CI, retire a relationship, each as a ``manual`` batch.

An operator's correction goes through the one door (``ingest``) like every source: it is reconciled
(``manual`` outranks every collector by default), recorded in history with the actor, and kept in the
run ledger. A correction names CIs by identity references built from what the store holds, so the
batch says exactly what a batch file would. Values are typed by the schema: ``cpu_count=8`` is the
integer 8, ``ip_addresses=10.0.0.1,10.0.0.2`` a list, ``tags={a: b}`` a mapping (YAML flow syntax).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from cmdb.batch import Batch
from cmdb.errors import BadInputError, NotFoundError
from cmdb.ingest import IngestResult, ingest
from cmdb.model import Schema
from cmdb.planning.state import DEFAULT_SCOPE
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import CIState, GraphStore

SOURCE = "manual"


def identity_reference(schema: Schema, ci: CIState, avoid: Iterable[str] = ()) -> dict[str, Any]:
    """``{class: ..., <key attrs>: values}`` naming ``ci`` by its first complete identity key that uses
    none of ``avoid`` (attributes being changed); scalar keys before list keys."""
    avoided = set(avoid)
    keys = sorted(schema.ci_class(ci.cls).identity, key=lambda k: any(isinstance(ci.attrs.get(a), list) for a in k))
    for key in keys:
        if not avoided & set(key) and all(ci.attrs.get(a) not in (None, "", []) for a in key):
            return {"class": ci.cls, **{a: ci.attrs[a] for a in key}}
    names = " | ".join("+".join(k) for k in keys)
    raise BadInputError(f"CI {ci.name or ci.id} has no identity key ({names}) to name it by"
                        + (f" other than the attributes being set ({', '.join(sorted(avoided))})" if avoided else "")
                        + "; set one of the others first")


def parse_assignments(schema: Schema, cls: str, items: Sequence[str]) -> dict[str, Any]:
    """``attr=value`` words as canonical, typed attributes of ``cls``; every bad word is reported at once."""
    ci_class = schema.ci_class(cls)
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(f"{item!r}: expected attr=value")
            continue
        spec = ci_class.attributes.get(name)
        if spec is None:
            problems.append(f"{name!r} is not an attribute of {cls} (known: {', '.join(sorted(ci_class.attributes))})")
            continue
        if text == "":
            problems.append(f"{name}: give a value (removing a value is not supported here)")
            continue
        value: Any = text
        if spec.is_list:
            value = _flow(text) if text.lstrip().startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        elif spec.type == "dict":
            value = _flow(text)
        raw[name] = value
    for name, value in raw.items():
        try:
            raw[name] = schema.validate(cls, {name: value})[name]
        except BadInputError as exc:
            problems.append(str(exc))
    if problems:
        raise BadInputError(f"cannot set attributes of {cls}: " + "; ".join(problems))
    if not raw:
        raise BadInputError("name at least one attr=value to set")
    return raw


def _flow(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInputError(f"{text!r} is not a YAML value: {getattr(exc, 'problem', exc)}") from None


def _batch(doc: Mapping[str, Any], origin: str, actor: str | None) -> Batch:
    batch = Batch.from_dict({"source": SOURCE, "scope": DEFAULT_SCOPE, **doc}, origin=origin)
    batch.actor = actor
    return batch


def _get(store: GraphStore, ci_id: str) -> CIState:
    ci = store.get_ci(ci_id)
    if ci is None:
        raise NotFoundError(f"no CI {ci_id}")
    return ci


def set_attributes(store: GraphStore, schema: Schema, ci_id: str, items: Sequence[str], *, actor: str | None = None,
                   config: ReconcileConfig | None = None) -> IngestResult:
    """Ingest a manual batch that sets ``items`` (``attr=value``) on CI ``ci_id``."""
    ci = _get(store, ci_id)
    values = parse_assignments(schema, ci.cls, items)
    ref = identity_reference(schema, ci, avoid=values)
    result = ingest(store, _batch({"cis": [{"ref": "ci", **ref, **values}]}, f"cmdb ci set {ci_id}", actor),
                    schema=schema, config=config)
    if result.conflicts:
        raise BadInputError(f"the new values of {ci.name or ci_id} match another CI (identity conflict"
                            f" {result.conflicts[0].id}); nothing was written, see `cmdb conflicts`")
    return result


def retire_ci(store: GraphStore, schema: Schema, ci_id: str, *, actor: str | None = None,
              config: ReconcileConfig | None = None, origin: str | None = None) -> IngestResult:
    """Ingest a manual batch retiring CI ``ci_id`` and its live relationships (``origin`` names the request
    in errors; the API passes a store whose ``write_batch`` checks ``If-Match`` inside the transaction)."""
    ci = _get(store, ci_id)
    rels = store.relationships(ci_id, include_retired=False, limit=100_000)
    ends = store.get_cis({r.src for r in rels} | {r.dst for r in rels} - {ci_id})
    ends[ci_id] = ci
    refs = {i: identity_reference(schema, c) for i, c in ends.items()}
    doc = {"retire": {"cis": [refs[ci_id]],
                      "relationships": [{"type": r.type, "from": refs[r.src], "to": refs[r.dst]} for r in rels]}}
    return ingest(store, _batch(doc, origin or f"cmdb ci retire {ci_id}", actor), schema=schema, config=config)


def retire_relationship(store: GraphStore, schema: Schema, src: str, rtype: str, dst: str, *,
                        actor: str | None = None) -> IngestResult:
    """Ingest a manual batch retiring the ``rtype`` relationship from CI ``src`` to CI ``dst``."""
    schema.rel_type(rtype)
    a, b = _get(store, src), _get(store, dst)
    live = [r for r in store.relationships(src, rtype, "out", include_retired=True, limit=100_000) if r.dst == dst]
    if not live:
        raise NotFoundError(f"there is no {rtype} relationship from {a.name or src} to {b.name or dst};"
                            f" see `cmdb rel list --ci {src}`")
    doc = {"retire": {"relationships": [{"type": rtype, "from": identity_reference(schema, a),
                                         "to": identity_reference(schema, b)}]}}
    return ingest(store, _batch(doc, f"cmdb rel retire {src} {rtype} {dst}", actor), schema=schema)
