"""``first_stakeholders`` on arrays, for the numpy engine on an index that keeps the stakeholder edges.

A core switch of a 100k-CI estate ties 3,000 people and teams to its 20,000 affected CIs through
40,000 (role, CI) reasons; ranking them in a Python loop was the largest cost of a fresh incident
answer. The index's stakeholder edges become a CSR by affected CI once per index (``arrays_of``);
per answer, one gather, three ``reduceat`` aggregates and two lexsorts rank the stakeholders and
order the reasons of the kept ones, with exactly the keys of ``impact.stakeholders`` (ties by name,
then id; a reason's CI by name, role, then id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from impact.csr import csr, gather
from impact.stakeholders import CONTACT_ATTRS, Stakeholder, StakeholderReason, role_key, role_rank
from impact.states import State
from impact.vector_labels import Numbered, labels_of

Array = Any
STATES = (State.OK, State.AT_RISK, State.DEGRADED, State.DOWN)


@dataclass
class StakeholderArrays:
    who_ids: list[str]  # stakeholders (people and teams not retired), by index
    who_rank: Array  # per stakeholder: position by ((name or id).lower(), id)
    roles: list[str]  # role names, by index
    role_rank: Array  # per role: ``role_rank`` (the order of ``ROLE_ORDER``)
    role_order: Array  # per role: position by role name (the last tie-break of reasons)
    indptr: Array  # CSR by node of the VectorIndex: its stakeholder edges' stakeholder and role
    who: Array
    role: Array


class ArrayRadius(Protocol):
    """What is read of a ``VectorBlastRadius`` here (it imports this module, so not by name)."""

    affected_ids: Array
    state: Array

    @property
    def vx(self) -> Numbered: ...

    def tier_array(self) -> Array | None: ...


def arrays_of(vx: Numbered) -> StakeholderArrays | None:
    """The index's stakeholder edges as arrays, built on first use; None if the index has none loaded."""
    index = vx.index
    if index.stakeholders is None:
        return None
    cached = index.derived.get("stakeholders")
    if isinstance(cached, StakeholderArrays):
        return cached
    who_ids = sorted({who for pairs in index.stakeholders.values() for who, _r, _w in pairs})
    who_pos = {w: k for k, w in enumerate(who_ids)}
    roles = sorted({role for pairs in index.stakeholders.values() for _w, role, _c in pairs})
    role_pos = {r: k for k, r in enumerate(roles)}
    rows: list[int] = []
    whos: list[int] = []
    rls: list[int] = []
    pos = vx.pos
    for what, pairs in index.stakeholders.items():
        p = pos.get(what)
        if p is None:  # a CI without impact edges: affected only as a cause outside the index (general code)
            continue
        for who, role, _what in pairs:
            rows.append(p)
            whos.append(who_pos[who])
            rls.append(role_pos[role])
    people = index.people
    order = sorted(range(len(who_ids)), key=lambda k: ((people[who_ids[k]].name or who_ids[k]).lower(), who_ids[k]))
    who_rank = np.empty(len(who_ids), np.int64)
    who_rank[np.array(order, np.int64)] = np.arange(len(who_ids))
    indptr, who_arr, role_arr = csr(np.array(rows, np.int64), np.array(whos, np.int64), vx.n,
                                     np.array(rls, np.int64))
    built = StakeholderArrays(who_ids, who_rank, roles, np.array([role_rank(r) for r in roles], np.int64),
                              np.arange(len(roles), dtype=np.int64), indptr, who_arr, role_arr)
    index.derived["stakeholders"] = built
    return built


def vector_stakeholders(radius: ArrayRadius, limit: int | None,
                        max_reasons: int | None) -> tuple[list[Stakeholder], int] | None:
    """``first_stakeholders(radius, limit, max_reasons)``; None when the arrays cannot answer."""
    vx = radius.vx
    sa = arrays_of(vx)
    tier_of = radius.tier_array()
    if sa is None or tier_of is None:
        return None
    aff = radius.affected_ids
    e, counts = gather(sa.indptr, aff)
    if not e.size:
        return [], 0
    what = np.repeat(aff, counts)
    who, role = sa.who[e], sa.role[e]
    tier = np.where(tier_of[what] > 0, tier_of[what], 99)
    state = radius.state[what].astype(np.int64)
    rr = sa.role_rank[role]
    # per stakeholder: best tier, worst state, best role: the ranking keys
    by_who = np.argsort(who, kind="stable")
    w = who[by_who]
    starts = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
    people = w[starts]
    best_tier = np.minimum.reduceat(tier[by_who], starts)
    worst = np.maximum.reduceat(state[by_who], starts)
    best_role = np.minimum.reduceat(rr[by_who], starts)
    ranked = np.lexsort((sa.who_rank[people], best_role, -worst, best_tier))
    chosen = ranked if limit is None else ranked[:limit]
    kept = people[chosen]
    if not kept.size:
        return [], int(people.size)
    # the reasons of the kept ones, deduplicated by (role, CI), in the order of ``first_stakeholders``
    place = np.full(len(sa.who_ids), -1, np.int64)
    place[kept] = np.arange(kept.size)
    mine = place[who] >= 0
    k_place, k_what, k_role = place[who][mine], what[mine], role[mine]
    labels = labels_of(vx)
    order = np.lexsort((labels.rank[k_what], sa.role_order[k_role], labels.dense[k_what], rr[mine], -state[mine],
                        tier[mine], k_place))
    k_place, k_what, k_role = k_place[order], k_what[order], k_role[order]
    dup = np.r_[False, (k_place[1:] == k_place[:-1]) & (k_what[1:] == k_what[:-1]) & (k_role[1:] == k_role[:-1])]
    k_place, k_what, k_role = k_place[~dup], k_what[~dup], k_role[~dup]
    bounds = np.searchsorted(k_place, np.arange(kept.size + 1))
    ids, names, st = vx.ids, labels.name, radius.state
    index_people = vx.index.people
    out: list[Stakeholder] = []
    for k, p in enumerate(kept.tolist()):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        total = hi - lo
        cut = max_reasons is not None and total > max_reasons
        end = lo + max_reasons if cut and max_reasons is not None else hi
        reasons = [StakeholderReason(sa.roles[r], ids[c], names[c], STATES[st[c]], int(tier_of[c]) or None)
                   for c, r in zip(k_what[lo:end].tolist(), k_role[lo:end].tolist(), strict=True)]
        who_id = sa.who_ids[p]
        person = index_people[who_id]
        contact = {a: str(person.attrs[a]) for a in CONTACT_ATTRS if person.attrs.get(a)}
        summary = None
        if cut:
            all_roles = sorted({sa.roles[r] for r in k_role[lo:hi].tolist()}, key=role_key)
            t = int(best_tier[chosen[k]])
            summary = (tuple(all_roles), None if t == 99 else t)
        out.append(Stakeholder(who_id, person.name or who_id, person.cls, contact, reasons, total, summary))
    return out, int(people.size)
