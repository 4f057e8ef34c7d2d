"""The blast-radius engine: propagate failures against dependency edges to a fixpoint.

States only rise (ok < at_risk < degraded < down), each CI's state is the worst that reaches it
over any edge, and a redundancy group's state is recomputed from all its members' states (so two
members failing together are judged together). Because a CI re-enters the frontier only when its
state rises, and it can rise at most three times, cycles neither loop nor double count.
Each hop is one batched ``fan_out`` call on the source (one ``neighbors`` call on a store).

Explanations: an edge u -> v *explains* v when what it carries is at least v's final state; the
path shown for a service is a shortest chain of explaining edges from a cause, choosing at each
step back the predecessor whose name sorts first (deterministic, and easy to check by hand).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from impact.rules import quorum_state
from impact.source import GroupInfo, ImpactSource, NodeInfo
from impact.states import State


@dataclass(frozen=True)
class AffectedService:
    id: str
    name: str
    tier: int | None
    state: State
    path: tuple[str, ...]  # CI names from a cause to the service
    path_ids: tuple[str, ...]


@dataclass
class BlastRadius:
    """The result of one propagation: every affected CI with its state, and how it was reached."""

    causes: dict[str, State]
    states: dict[str, State]
    groups: dict[str, GroupInfo]
    hops: int
    source: ImpactSource
    _preds: dict[str, set[tuple[str, str]]] | None = field(default=None, repr=False)
    _explained: dict[str, tuple[int, str | None]] | None = field(default=None, repr=False)
    _services: list[AffectedService] | None = field(default=None, repr=False)

    @property
    def preds(self) -> dict[str, set[tuple[str, str]]]:
        """Affected CI -> {(affected CI that hurts it, relationship type)}; one expansion of the set."""
        if self._preds is None:
            preds: dict[str, set[tuple[str, str]]] = {}
            states = self.states
            for u, v, t in self.source.expand(list(states)):
                if v in states:
                    preds.setdefault(v, set()).add((u, t))
            self._preds = preds
        return self._preds

    @property
    def affected(self) -> dict[str, State]:
        """Every CI hit, causes included."""
        return {i: s for i, s in self.states.items() if s > State.OK}

    def count(self) -> int:
        return len(self.states)

    def carried(self, u: str, rel_type: str, v: str) -> State:
        """What the edge u -> v delivers to v, given the final states."""
        su = self.states.get(u, State.OK)
        group = self.groups.get(v)
        rule = self.source.rules.edges.get(rel_type)
        if group is not None and rule is not None and rule.group:
            qs = quorum_state([self.states.get(m, State.OK) for m in group.members], group.required)
            return qs if su >= qs else State.OK
        cap = rule.cap if rule is not None else State.DOWN
        return min(su, cap)

    def _explain(self) -> dict[str, tuple[int, str | None]]:
        """Shortest explaining distance from any cause, and the chosen predecessor, per affected CI."""
        if self._explained is not None:
            return self._explained
        succ: dict[str, list[str]] = {}
        for v, ps in self.preds.items():
            for u, t in ps:
                if self.carried(u, t, v) >= self.states[v]:
                    succ.setdefault(u, []).append(v)
        dist: dict[str, int] = {c: 0 for c in self.causes}
        queue = deque(sorted(self.causes))
        while queue:
            u = queue.popleft()
            for v in succ.get(u, ()):
                if v not in dist:
                    dist[v] = dist[u] + 1
                    queue.append(v)
        names = self.source.describe(dist)
        out: dict[str, tuple[int, str | None]] = {}
        for v, d in dist.items():
            if d == 0:
                out[v] = (0, None)
                continue
            cands = [u for u, t in self.preds[v] if dist.get(u) == d - 1 and self.carried(u, t, v) >= self.states[v]]
            out[v] = (d, min(cands, key=lambda u: (names[u].name if u in names else u, u)))
        self._explained = out
        return out

    def path_to(self, ci_id: str) -> list[str]:
        """CI ids from a cause to ``ci_id`` along a shortest explaining chain ([] if not affected)."""
        explained = self._explain()
        if ci_id not in explained:
            return []
        path = [ci_id]
        while (prev := explained[path[-1]][1]) is not None:
            path.append(prev)
        return path[::-1]

    def services(self) -> list[AffectedService]:
        """Affected services, worst first: by tier, then state, then name."""
        if self._services is not None:
            return self._services
        ids = self.source.is_service(self.affected)
        info = self.source.describe(ids)
        out = []
        for sid in ids:
            path_ids = self.path_to(sid)
            names = self.source.describe(path_ids)
            out.append(AffectedService(sid, info[sid].name, info[sid].tier, self.states[sid],
                                       tuple(names[p].name if p in names else p for p in path_ids),
                                       tuple(path_ids)))
        self._services = sorted(out, key=lambda s: (s.tier if s.tier is not None else 99, -s.state, s.name, s.id))
        return self._services

    def service_tiers(self) -> dict[str, int]:
        """For each affected CI, the worst (lowest) tier of the affected services it feeds."""
        services = self.services()
        tier_of: dict[str, int] = {}
        for tier in sorted({s.tier for s in services if s.tier is not None}):
            queue = deque(s.id for s in services if s.tier == tier and s.id not in tier_of)
            for sid in queue:
                tier_of[sid] = tier
            while queue:
                v = queue.popleft()
                for u, _t in self.preds.get(v, ()):
                    if u not in tier_of:
                        tier_of[u] = tier
                        queue.append(u)
        return tier_of

    def describe(self) -> dict[str, NodeInfo]:
        return self.source.describe(self.affected)


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
