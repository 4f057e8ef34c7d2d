"""The result of a blast-radius propagation, shared by the Python engine and the numpy engine.

It sits in its own module so that ``impact.engine`` (which dispatches to ``impact.vector``) and
``impact.vector`` (which subclasses ``BlastRadius``) both import it and not each other.

Explanations: an edge u -> v *explains* v when what it carries is at least v's final state; the
path shown for a service is a shortest chain of explaining edges from a cause, choosing at each
step back the predecessor whose name sorts first (deterministic, and easy to check by hand).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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

    def worst_affected(self, limit: int | None = None) -> list[tuple[str, State]]:
        """Affected CIs (causes included) worst state first, then by name and id, the first ``limit`` of them."""
        affected = self.affected
        names = self.labels(affected)

        def worst_first(kv: tuple[str, State]) -> tuple[int, str, str]:
            return -kv[1], names[kv[0]][0], kv[0]

        hit = affected.items()
        return sorted(hit, key=worst_first) if limit is None else heapq.nsmallest(limit, hit, key=worst_first)

    def labels(self, ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """CI id -> (name, class) for output; a CI nobody describes is named by its id, without class."""
        ids = list(ids)
        info = self.source.describe(ids)
        return {i: (info[i].name, info[i].cls) if i in info else (i, None) for i in ids}

    def fast_stakeholders(self, limit: int | None, max_reasons: int | None) -> tuple[list[Any], int] | None:
        """``impact.stakeholders.first_stakeholders`` computed by the radius itself, when it can do it faster
        (the numpy engine on an index with stakeholders); None: the general code runs."""
        return None
