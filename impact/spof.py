"""Single points of failure: CIs whose failure alone takes a service of a given tier down.

Pure reachability over-reports (a pool member reaches its service but does not take it down) and
under-reports nothing; quorum is what matters, and a shared dependency can take several members of
a group down at once (one certificate on both load balancers of an HA pair). So networkx narrows
the candidates to the ancestors of the target services in the impact graph, and each candidate is
then failed on its own through the engine, redundancy and common causes included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx  # type: ignore[import-untyped,unused-ignore]  # no stubs in the dev set

from impact.engine import blast_radius
from impact.index import MemoryIndex
from impact.states import State


@dataclass(frozen=True)
class SinglePointOfFailure:
    id: str
    name: str
    cls: str
    services: tuple[tuple[str, int | None, tuple[str, ...]], ...]  # (service name, tier, explanation path)
    path_ids: tuple[tuple[str, ...], ...] = ()  # each service's path as CI ids (for redaction)

    @property
    def worst_tier(self) -> int:
        return min((t for _n, t, _p in self.services if t is not None), default=99)


def impact_digraph(index: MemoryIndex) -> Any:
    """The impact graph: an edge u -> v when u failing can hurt v."""
    g = nx.DiGraph()
    g.add_edges_from(index.hurts())
    return g


def single_points_of_failure(index: MemoryIndex, max_tier: int = 1, include_groups: bool = False
                             ) -> list[SinglePointOfFailure]:
    """Every CI whose sole failure leaves a tier <= ``max_tier`` service (not itself) down.

    Redundancy groups are logical, not components that fail on their own, so they are left out
    unless ``include_groups``.
    """
    targets = {i for i, n in index.nodes.items() if i in index.is_service([i]) and n.tier is not None
               and n.tier <= max_tier}
    graph = impact_digraph(index)
    candidates: set[str] = set()
    for t in targets:
        if t in graph:
            candidates |= nx.ancestors(graph, t)
    if not include_groups:
        candidates -= set(index.members)
    out = []
    for c in sorted(candidates):
        br = blast_radius(index, {c: State.DOWN})
        hit = [s for s in br.services() if s.id in targets and s.id != c and s.state == State.DOWN]
        if hit:
            info = index.describe([c])[c]
            out.append(SinglePointOfFailure(c, info.name, info.cls, tuple((s.name, s.tier, s.path) for s in hit),
                                            tuple(s.path_ids for s in hit)))
    return sorted(out, key=lambda s: (s.worst_tier, -len(s.services), s.name, s.id))
