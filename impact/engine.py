"""The blast-radius engine: propagate failures against dependency edges to a fixpoint.

States only rise (ok < at_risk < degraded < down), each CI's state is the worst that reaches it
over any edge, and a redundancy group's state is recomputed from all its members' states (so two
members failing together are judged together). Because a CI re-enters the frontier only when its
state rises, and it can rise at most three times, cycles neither loop nor double count.
Each hop is one batched ``fan_out`` call on the source (one ``neighbors`` call on a store).
The result, ``BlastRadius``, lives in ``impact.radius`` (shared with the numpy engine).
"""

from __future__ import annotations

from collections.abc import Mapping

from impact.radius import AffectedService, BlastRadius
from impact.rules import quorum_state
from impact.source import GroupInfo, ImpactSource
from impact.states import State

__all__ = ["AffectedService", "BlastRadius", "blast_radius", "propagate"]  # the result types re-exported


def blast_radius(source: ImpactSource, failures: Mapping[str, State], max_hops: int | None = None,
                 vector: bool | None = None) -> BlastRadius:
    """Propagate ``failures`` (CI id -> state) through ``source`` to a fixpoint.

    On a ``MemoryIndex`` without ``max_hops`` this runs the numpy engine (``impact.vector``, same
    results) when numpy is importable, unless ``vector=False``; ``vector=True`` insists on it.
    Otherwise, and on stores, the Python engine (``propagate``) below.
    """
    if vector is not False and max_hops is None:
        from impact.index import MemoryIndex

        if isinstance(source, MemoryIndex):
            try:
                from impact.vector import vector_blast_radius
            except ImportError:
                if vector:
                    raise
            else:
                return vector_blast_radius(source, failures)
    if vector:
        raise ValueError("the vector engine needs a MemoryIndex and no max_hops")
    return propagate(source, failures, max_hops)


def propagate(source: ImpactSource, failures: Mapping[str, State], max_hops: int | None = None) -> BlastRadius:
    """The Python engine: frontier expansion on any source, the reference for ``impact.vector``.

    The hot loop touches each edge once per rise of its source's state and allocates nothing per
    edge; which edge explains what is worked out afterwards, only when a path is asked for.
    """
    states: dict[str, State] = {c: s for c, s in failures.items() if s > State.OK}
    groups: dict[str, GroupInfo] = {}
    frontier: set[str] = set(states)
    hops = 0
    ok = State.OK
    get = states.get
    while frontier and (max_hops is None or hops < max_hops):
        hops += 1
        nxt: set[str] = set()
        touched: set[str] = set()
        for u, plain, grouped in source.fan_out(frontier):
            su = states[u]
            for v, cap, _t in plain:
                s = su if su <= cap else cap
                if s > get(v, ok):
                    states[v] = s
                    nxt.add(v)
            for g, _t in grouped:
                touched.add(g)
        if touched:
            new = touched.difference(groups)
            if new:
                groups.update(source.groups(new))
            for g in touched:
                info = groups[g]
                s = quorum_state([get(m, ok) for m in info.members], info.required)
                if s > get(g, ok):
                    states[g] = s
                    nxt.add(g)
        frontier = nxt
    return BlastRadius(dict(failures), states, groups, hops, source)
