"""Which identity values and class claims contradict each other, and the conflicts they make.

* **Identity values.** Two descriptions matched through an identity key are the same thing unless a
  *stronger* single-value key disagrees: a shared MAC does not make two boxes with different serials
  one, a shared instance id outranks a differing hostname. Keys are ordered strongest first in the
  schema, so "stronger" is "earlier than the strongest key they share". List-valued keys (MACs,
  external ids) never contradict: a box has several.
* **Class families.** Classes of one identity domain (Device) fall into families, the domain's
  direct subclasses (Host, NetworkDevice, Printer). Refinements in a lineage and siblings in a
  family resolve by precedence (``cis.CIPlanning.resolve_class``); a claim from another family is a
  recorded conflict and the CI keeps its family (``ClaimPlanning.family_checked``).
* **One batch, two values.** Items of one batch that describe the same CI with different values of
  an attribute are reported (``ClaimPlanning.report_disagreements``), not silently last-wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cmdb.identity import ItemGroup, normalize_key_value
from cmdb.model import Schema
from cmdb.planning.state import CLASS_ATTR, PlannerState
from cmdb.reconcile import is_fresh, resolve
from cmdb.store.base import AttrValue, ChangeSet, CIState, Conflict, Sighting


def family(schema: Schema, cls: str) -> str | None:
    """The direct subclass of the identity domain's root that ``cls`` descends from (None for the root)."""
    c = schema.ci_class(cls)
    lineage = list(reversed(c.ancestors))  # CI, Device, Host, Server
    for i, name in enumerate(lineage):
        if schema.ci_class(name).identity_domain == c.identity_domain:
            return lineage[i + 1] if i + 1 < len(lineage) else None
    return None


def specific(schema: Schema, cls: str) -> bool:
    """Below its family's root: a Server or a Switch says what a box is; a scan's Host only that it is one."""
    fam = family(schema, cls)
    return fam is not None and fam != cls


def cross_family(schema: Schema, a: str, b: str) -> bool:
    """Two specific classes of different families: claims that contradict (a generic Host never does)."""
    if a == b or a not in schema.classes or b not in schema.classes:
        return False
    if not (specific(schema, a) and specific(schema, b)):
        return False
    return family(schema, a) != family(schema, b)


def contradicting_attrs(schema: Schema, cls: str, a: Mapping[str, Any], b: Mapping[str, Any],
                        shared: Iterable[str]) -> list[str]:
    """Single-value identity attributes stronger than every shared key name in ``shared`` on which
    ``a`` and ``b`` both have a value and disagree."""
    ci_class = schema.ci_class(cls)
    shared = set(shared)
    out: list[str] = []
    for key in ci_class.identity:
        if "+".join(key) in shared:
            break
        if len(key) != 1:
            continue
        attr = key[0]
        spec = ci_class.attributes.get(attr)
        if spec is None or spec.is_list:
            continue
        va, vb = a.get(attr), b.get(attr)
        if va is not None and vb is not None and normalize_key_value(va) != normalize_key_value(vb):
            out.append(attr)
    return out


def conflict_id(*parts: str) -> str:
    return "conflict-" + hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


class ClaimPlanning(PlannerState):
    def family_checked(self, cs: ChangeSet, state: CIState, new_cls: str, group: ItemGroup,
                       prov: dict[str, dict[str, AttrValue]], sightings: dict[tuple[str, str], Sighting]) -> str:
        """``new_cls`` unless it leaves the CI's family: then the best claim within the family, and a
        recorded conflict naming the CI, the claimed class and the source."""
        schema = self.schema
        clash = cross_family(schema, state.cls, new_cls) or cross_family(schema, state.cls, group.cls)
        if not clash:
            fs, fn = family(schema, state.cls), family(schema, new_cls)
            if fs is None or fn is None or fs == fn:
                return new_cls
            # A generic claim of another family: the specific side says which family the box is in.
            anchor = state.cls if specific(schema, state.cls) or not specific(schema, new_cls) else new_cls
        else:
            anchor = state.cls
        fam = family(schema, anchor)
        claims = {s: v for s, v in (prov.get(CLASS_ATTR) or {}).items()
                  if str(v.value) in schema.classes and family(schema, str(v.value)) == fam}
        best = anchor
        win = resolve(claims, (), CLASS_ATTR, sightings, self.horizon, self.config) if claims else None
        if win is not None:
            best = str(win.value)
            for source, claim in claims.items():
                if self.schema.is_a(str(claim.value), best) and is_fresh(source, sightings, self.horizon):
                    best = str(claim.value)
        if not clash:
            return best
        other = group.cls if cross_family(self.schema, state.cls, group.cls) else new_cls
        cs.conflicts.append(Conflict(
            id=conflict_id("class", state.id, other), at=self.at, source=self.batch.source,
            run_id=self.batch.run_id,
            item=f"{group.describe()}: {self.batch.source} says {other}, a {family(self.schema, other)};"
                 f" {state.id} is a {best} ({family(self.schema, best)}); its class stays",
            item_class=other, keys={k: state.id for k in sorted(group.keys)}, ci_ids=[state.id], attrs=group.attrs,
        ))
        return best

    def report_disagreements(self, cs: ChangeSet, group: ItemGroup, ci_id: str) -> None:
        """A conflict per attribute on which items of this batch that are one CI disagree."""
        for attr, values in sorted(group.disagreements.items()):
            items = ", ".join(r.describe() for r in group.items)
            cs.conflicts.append(Conflict(
                id=conflict_id("batch", self.batch.run_id, ci_id, attr), at=self.at, source=self.batch.source,
                run_id=self.batch.run_id,
                item=f"{items}: one CI, {attr} given as {' and '.join(repr(v) for v in values)}; the last was kept",
                item_class=group.cls, keys={k: ci_id for k in sorted(group.keys)}, ci_ids=[ci_id],
                attrs={attr: values},
            ))
