"""Preparation: the batch validated whole, its items merged and its references resolved to identity
keys, before the store is touched (pure)."""

from __future__ import annotations

import contextlib
from typing import Any

from cmdb.batch import CIRecord, IdentityRef, Ref, RelRecord
from cmdb.batch_values import refuse_control_characters
from cmdb.errors import BadInputError, CmdbError
from cmdb.identity import identity_keys, merge_batch_items
from cmdb.planning.problems import Problems
from cmdb.planning.state import PlannerState, PreparedRel


class Preparation(PlannerState):
    def prepare(self) -> None:
        schema, batch = self.schema, self.batch
        refuse_control_characters(batch)
        if not batch.source or any(c.isspace() for c in batch.source):
            raise BadInputError(f"{batch.origin}: source {batch.source!r} must be a word like snmp or import:csv")
        problems = Problems(batch.origin)
        items: list[tuple[CIRecord, dict[str, Any]]] = []
        item_keys: list[dict[str, str]] = []
        refs: dict[str, CIRecord] = {}
        failed_refs: set[str] = set()
        for rec in batch.cis:
            try:
                attrs = schema.validate(rec.cls, rec.attrs)
            except CmdbError as exc:
                problems.add(rec.describe(), str(exc), exc)
                failed_refs.add(rec.ref or "")
                continue
            keys = identity_keys(schema, rec.cls, attrs)
            if not keys:
                names = " | ".join("+".join(k) for k in schema.ci_class(rec.cls).identity)
                problems.add(rec.describe(), f"no identity attributes; give one of: {names}")
                failed_refs.add(rec.ref or "")
                continue
            if rec.ref is not None:
                if rec.ref in refs:
                    problems.add(rec.describe(), f"ref {rec.ref!r} is already used by {refs[rec.ref].describe()}")
                    continue
                refs[rec.ref] = rec
            item_keys.append(keys)
            items.append((rec, attrs))
        if not problems:
            self.groups = merge_batch_items(schema, items, item_keys)
        for gi, group in enumerate(self.groups):
            for rec in group.items:
                if rec.ref is not None:
                    self.ref_group[rec.ref] = gi
        for rel in batch.rels:
            try:
                schema.rel_type(rel.type)
            except CmdbError as exc:
                problems.add(rel.describe(), str(exc), exc)
                continue
            if not isinstance(rel.attrs, dict):
                problems.add(rel.describe(), "attributes must be a mapping")
                continue
            prepared = PreparedRel(rel, dict(rel.attrs))
            for side in ("src", "dst"):
                end: Ref = getattr(rel, side)
                if isinstance(end, str):
                    if end not in self.ref_group and end not in refs and end not in failed_refs:
                        problems.add(
                            rel.describe(),
                            f"{'from' if side == 'src' else 'to'} names ref {end!r}, which is not an item of "
                            "this batch (use {class: ..., <key>: ...} for a CI already in the store)",
                        )
                else:
                    try:
                        setattr(prepared, f"{side}_keys", self.ref_keys(rel, end))
                    except BadInputError as exc:
                        problems.add(rel.describe(), str(exc), exc, formatted=True)
            self.rels.append(prepared)
        problems.raise_any()

    def ref_keys(self, rel: RelRecord, ref: IdentityRef) -> dict[str, str]:
        try:
            cached = self.ref_cache.get(ref)
        except TypeError:  # a list value in the reference (MACs): not hashable, not cached
            cached = None
        if cached is not None:
            return cached
        try:
            attrs = self.schema.validate(ref.cls, dict(ref.attrs))
        except CmdbError as exc:
            raise self.fail(rel.describe(), f"reference {ref.describe()}: {exc}", exc) from None
        keys = identity_keys(self.schema, ref.cls, attrs)
        if not keys:
            names = " | ".join("+".join(k) for k in self.schema.ci_class(ref.cls).identity)
            raise self.fail(rel.describe(), f"reference {ref.describe()} has no identity key; give one of: {names}")
        with contextlib.suppress(TypeError):
            self.ref_cache[ref] = keys
        return keys
