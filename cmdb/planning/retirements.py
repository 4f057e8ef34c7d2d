"""Explicit retirement: a ``manual`` batch's ``retire`` section declares CIs and relationships gone.

A retirement is a manual sighting with status ``retired`` and ``missed == 0`` in the batch's scope;
every other manual sighting of the item is retired with it, so no older manual word keeps it alive.
``derive_status`` treats that as final (the operator's word) until a manual batch describes the item
again. Retiring a CI does not reach its relationships on its own: name them too (``cmdb ci retire``
does), since the plan sees only what the batch names.
"""

from __future__ import annotations

from dataclasses import replace

from cmdb.batch import IdentityRef
from cmdb.errors import CmdbError, NotFoundError
from cmdb.identity import identity_keys
from cmdb.planning.state import IngestResult, PlannerState, derive_status
from cmdb.reconcile import MANUAL_SOURCES
from cmdb.store.base import BatchReader, ChangeSet, Sighting, SightingWrite


class Retirements(PlannerState):
    def ref_keys_of(self, ref: IdentityRef, where: str) -> dict[str, str]:
        """Identity keys of one reference in the ``retire`` section (validated, pure)."""
        try:
            attrs = self.schema.validate(ref.cls, dict(ref.attrs))
        except CmdbError as exc:
            raise self.fail(where, f"reference {ref.describe()}: {exc}", exc) from None
        keys = identity_keys(self.schema, ref.cls, attrs)
        if not keys:
            names = " | ".join("+".join(k) for k in self.schema.ci_class(ref.cls).identity)
            raise self.fail(where, f"reference {ref.describe()} has no identity key; give one of: {names}")
        return keys

    def _resolve(self, found: dict[str, tuple[str, str]], ref: IdentityRef, where: str) -> str:
        ids = sorted({found[k][0] for k in self.ref_keys_of(ref, where) if k in found})
        if not ids:
            raise NotFoundError(f"{self.batch.origin}: {where}: {ref.describe()} matches no CI; nothing of this"
                                " batch was written")
        if len(ids) > 1:
            raise self.fail(where, f"{ref.describe()} matches several CIs: {', '.join(ids)}")
        return ids[0]

    def _retired(self, sightings: dict[tuple[str, str], Sighting], run_id: str) -> dict[tuple[str, str], Sighting]:
        """Every manual sighting retired, and the batch's own scope retired now (``missed`` 0: explicit)."""
        out = dict(sightings)
        for key, s in sightings.items():
            if s.source in MANUAL_SOURCES and s.status != "retired":
                out[key] = replace(s, status="retired")
        own = (self.batch.source, self.scope)
        old = sightings.get(own)
        out[own] = Sighting(self.batch.source, self.scope, old.first_seen if old else self.at, self.at, run_id, 0,
                            "retired")
        return out

    def plan_retirements(self, reader: BatchReader, cs: ChangeSet, seen_ci: set[str], seen_rel: set[str],
                         result: IngestResult) -> None:
        """Retire what the batch's ``retire`` section names; adds them to ``seen_*`` so ageing skips them."""
        batch = self.batch
        if not batch.retire_cis and not batch.retire_rels:
            return
        keys: set[str] = set()
        for i, ref in enumerate(batch.retire_cis):
            keys.update(self.ref_keys_of(ref, f"retire.cis[{i}]"))
        for wanted in batch.retire_rels:
            for end in (wanted.src, wanted.dst):
                assert isinstance(end, IdentityRef)
                keys.update(self.ref_keys_of(end, f"retire.{wanted.describe()}"))
        found = reader.resolve_keys(keys)
        ci_ids = [self._resolve(found, ref, f"retire.cis[{i}]") for i, ref in enumerate(batch.retire_cis)]
        triples = []
        for wanted in batch.retire_rels:
            assert isinstance(wanted.src, IdentityRef) and isinstance(wanted.dst, IdentityRef)
            self.schema.rel_type(wanted.type)
            where = f"retire.{wanted.describe()}"
            triples.append((wanted.type, self._resolve(found, wanted.src, where),
                            self._resolve(found, wanted.dst, where)))
        clash = sorted(set(ci_ids) & seen_ci)
        if clash:
            raise self.fail("retire.cis", f"CI {clash[0]} is both described and retired by this batch")
        for ci_id, state in sorted(reader.load_cis(set(ci_ids)).items()):
            sightings = self._retired(state.sightings, batch.run_id)
            cs.sightings.extend(SightingWrite("ci", ci_id, s) for k, s in sightings.items()
                                if state.sightings.get(k) != s)
            status = derive_status(sightings.values())
            if status != state.status:
                self.event(cs, "ci.status", ci_id=ci_id, attr="status", old=state.status, new=status)
                result.retired += 1
            cs.cis_changed.append(replace(state, status=status, sightings=sightings,
                                          updated_at=self.at if status != state.status else state.updated_at))
            seen_ci.add(ci_id)
        rels = reader.load_rels(triples)
        for (_rtype, src, dst), rel in sorted(rels.items()):
            sightings = self._retired(rel.sightings, batch.run_id)
            cs.sightings.extend(SightingWrite("rel", rel.id, s) for k, s in sightings.items()
                                if rel.sightings.get(k) != s)
            status = derive_status(sightings.values())
            if status != rel.status:
                self.event(cs, "rel.status", rel_id=rel.id, ci_id=src, peer_id=dst, attr="status",
                           old=rel.status, new=status)
                cs.rels_changed.append(replace(rel, status=status, updated_at=self.at, sightings=sightings))
                result.rels_updated += 1
            seen_rel.add(rel.id)
        missing = [t for t in triples if t not in rels]
        if missing:
            rtype, src, dst = missing[0]
            raise NotFoundError(f"{batch.origin}: retire: there is no {rtype} relationship from {src} to {dst};"
                                " nothing of this batch was written")
