"""The blast-radius engine vectorised with numpy over a ``MemoryIndex``: same answers, array speed.

``VectorIndex.from_index`` turns the index's adjacency lists into CSR arrays once: CIs get int
ids; plain impact edges carry their cap (``effect: degraded`` -> DEGRADED); redundancy groups get
a member CSR, a member -> group CSR and the number of members that must survive. ``propagate``
then runs the fixpoint level-synchronously: gather the plain edges of the whole frontier
(``indptr`` + ``np.repeat``), raise targets to ``min(state, cap)`` by max-combining, re-evaluate
every group a frontier CI belongs to (alive members counted with ``np.bincount`` against the
quorum, worst member by ``np.maximum.reduceat``), and repeat with the CIs whose state rose.
States only rise and propagation is monotone, so the fixpoint equals the Python engine's
(``impact.engine``), whatever the order of updates; only ``hops`` (iterations) may differ.

Explanations follow ``BlastRadius._explain`` exactly, but on arrays and only when asked for: the
explaining edges (what the edge carries >= the target's final state) among affected CIs, a
level BFS from the causes, and per CI the candidate predecessors one level up. ``path_to`` walks
back from one CI, looking names up only where several candidates tie (first name, then id wins),
so paths are built only for the affected services that are asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from impact.csr import csr, gather
from impact.index import MemoryIndex
from impact.radius import AffectedService, BlastRadius
from impact.source import GroupInfo
from impact.states import State
from impact.vector_labels import Labels, labels_of
from impact.vector_stakeholders import vector_stakeholders

STATES = (State.OK, State.AT_RISK, State.DEGRADED, State.DOWN)
DOWN = np.int8(State.DOWN)
DEGRADED = np.int8(State.DEGRADED)

Array = Any  # numpy arrays (numpy is untyped for mypy here)


@dataclass
class VectorIndex:
    """CSR arrays over one MemoryIndex (a snapshot: ``VectorIndex.of`` rebuilds after edits)."""

    index: MemoryIndex
    ids: list[str]
    pos: dict[str, int]
    types: list[str]
    # plain impact edges, CSR by the failing CI: target, cap, relationship type (index into types)
    p_indptr: Array
    p_dst: Array
    p_cap: Array
    p_type: Array
    # redundancy groups: node id, required survivors, GroupInfo; members CSR by group; groups CSR by member
    g_node: Array
    g_required: Array
    g_info: list[GroupInfo]
    gm_indptr: Array
    gm_member: Array
    mg_indptr: Array
    mg_group: Array

    @property
    def n(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, index: MemoryIndex) -> VectorIndex:
        """The index's CSR arrays, built on first use and kept until ``index.add_edge`` drops them."""
        cached = index.derived.get("vector")
        if isinstance(cached, VectorIndex) and cached.index is index:
            return cached
        built = cls.from_index(index)
        index.derived["vector"] = built
        return built

    @classmethod
    def from_index(cls, index: MemoryIndex) -> VectorIndex:
        ids: list[str] = []
        pos: dict[str, int] = {}

        def at(c: str) -> int:
            i = pos.get(c)
            if i is None:
                i = pos[c] = len(ids)
                ids.append(c)
            return i

        types = index.rules.impact_types
        tpos = {t: i for i, t in enumerate(types)}
        src: list[int] = []
        dst: list[int] = []
        cap: list[int] = []
        typ: list[int] = []
        for u, plain, _grouped in index.fan.values():
            ui = at(u)
            for v, c, t in plain:
                src.append(ui)
                dst.append(at(v))
                cap.append(int(c))
                typ.append(tpos[t])
        group_ids = sorted(index.members)
        infos = index.groups(group_ids)
        g_info = [infos[g] for g in group_ids]
        g_node = np.array([at(g) for g in group_ids], np.int64)
        m_group: list[int] = []
        m_member: list[int] = []
        for k, info in enumerate(g_info):
            for m in info.members:  # sorted and deduplicated, as the Python engine evaluates them
                m_group.append(k)
                m_member.append(at(m))
        n = len(ids)
        p_indptr, p_dst, p_cap, p_type = csr(np.array(src, np.int64), np.array(dst, np.int64), n,
                                              np.array(cap, np.int8), np.array(typ, np.int16))
        mg = np.array(m_group, np.int64)
        mm = np.array(m_member, np.int64)
        gm_indptr, gm_member = csr(mg, mm, len(group_ids))
        mg_indptr, mg_group = csr(mm, mg, n)
        return cls(index, ids, pos, types, p_indptr, p_dst, p_cap, p_type, g_node,
                   np.array([i.required for i in g_info], np.int64), g_info, gm_indptr, gm_member,
                   mg_indptr, mg_group)

    # -- propagation ------------------------------------------------------------------------------
    def _quorum(self, groups: Array, state: Array) -> Array:
        """``rules.quorum_state`` of each group in ``groups`` (all have members) under ``state``."""
        e, counts = gather(self.gm_indptr, groups)
        ms = state[self.gm_member[e]]
        seg = np.repeat(np.arange(groups.size), counts)
        alive = np.bincount(seg, weights=ms < DOWN, minlength=groups.size)
        worst = np.maximum.reduceat(ms, np.cumsum(counts) - counts)
        return np.where(alive < self.g_required[groups], DOWN, np.minimum(worst, DEGRADED)).astype(np.int8)

    def propagate(self, causes: Array, cause_states: Array) -> tuple[Array, Array, Array, int]:
        """Fixpoint from ``causes`` (node ids) at ``cause_states``.

        Returns (state per node, affected node ids sorted, touched group ids sorted, iterations).
        """
        state = np.zeros(self.n, np.int8)
        state[causes] = cause_states
        frontier = np.unique(causes[cause_states > 0])
        reached = [frontier]
        touched_all = []
        hops = 0
        while frontier.size:
            hops += 1
            raised = []
            e, counts = gather(self.p_indptr, frontier)
            if e.size:
                dst = self.p_dst[e]
                val = np.minimum(np.repeat(state[frontier], counts), self.p_cap[e])
                up = val > state[dst]
                dst, val = dst[up], val[up]
                if dst.size:
                    for s in np.unique(val):  # ascending: the highest value written last wins
                        state[dst[val == s]] = s
                    raised.append(np.unique(dst))
            ge, _ = gather(self.mg_indptr, frontier)
            if ge.size:
                touched = np.unique(self.mg_group[ge])
                touched_all.append(touched)
                qs = self._quorum(touched, state)
                gn = self.g_node[touched]
                up = qs > state[gn]
                if up.any():
                    state[gn[up]] = qs[up]
                    raised.append(gn[up])
            frontier = np.unique(np.concatenate(raised)) if raised else np.empty(0, np.int64)
            if frontier.size:
                reached.append(frontier)
        affected = np.unique(np.concatenate(reached))
        touched = np.unique(np.concatenate(touched_all)) if touched_all else np.empty(0, np.int64)
        return state, affected, touched, hops


class VectorBlastRadius(BlastRadius):
    """A ``BlastRadius`` backed by arrays: dicts and paths are built only when asked for."""

    def __init__(self, vx: VectorIndex, failures: Mapping[str, State]) -> None:
        self.vx = vx
        self.causes = dict(failures)
        self.source = vx.index
        self._preds = None
        self._explained = None
        self._services = None
        self._states: dict[str, State] | None = None
        self._groups: dict[str, GroupInfo] | None = None
        self._bfs: tuple[Array, Array] | None = None
        self._walk: tuple[list[int], list[int], list[int]] | None = None
        self._tiers: Array | None = None
        inside = [(vx.pos[c], int(s)) for c, s in failures.items() if c in vx.pos]
        # causes the index has no edge for are affected by themselves only
        self.outside = {c: State(s) for c, s in failures.items() if c not in vx.pos and s > State.OK}
        causes = np.array([i for i, _s in inside], np.int64)
        states = np.array([s for _i, s in inside], np.int8)
        self.state, self.affected_ids, self.touched, self.hops = vx.propagate(causes, states)

    def count(self) -> int:
        return int(self.affected_ids.size) + len(self.outside)

    @property
    def states(self) -> dict[str, State]:
        if self._states is None:
            ids = self.vx.ids
            out = dict(zip([ids[i] for i in self.affected_ids.tolist()],
                           [STATES[s] for s in self.state[self.affected_ids].tolist()], strict=True))
            out.update(self.outside)
            self._states = out
        return self._states

    @states.setter
    def states(self, value: dict[str, State]) -> None:
        self._states = value

    @property
    def groups(self) -> dict[str, GroupInfo]:
        if self._groups is None:
            info = self.vx.g_info
            self._groups = {info[k].id: info[k] for k in self.touched.tolist()}
        return self._groups

    @groups.setter
    def groups(self, value: dict[str, GroupInfo]) -> None:
        self._groups = value

    @property
    def affected(self) -> dict[str, State]:
        return self.states  # only states > ok are ever recorded

    def service_tiers(self) -> dict[str, int]:
        """``BlastRadius.service_tiers`` on arrays (``tier_array``)."""
        tier_of = self.tier_array()
        if tier_of is None:
            return super().service_tiers()  # causes outside the index: the general walk
        reached = np.flatnonzero(tier_of)
        ids = self.vx.ids
        return dict(zip([ids[i] for i in reached.tolist()], tier_of[reached].tolist(), strict=True))

    def tier_array(self) -> Array | None:
        """Per node, the worst (lowest) tier of the affected services it feeds (0: none); None when causes
        lie outside the index. A reverse BFS per tier, best tier first, over every impact edge among
        affected CIs (plain edges, and member -> group), as ``preds`` holds them."""
        if self._tiers is not None:
            return self._tiers
        if self.outside:
            return None
        services = self.services()
        tiers = sorted({s.tier for s in services if s.tier is not None})
        vx, state, aff = self.vx, self.state, self.affected_ids
        tier_of = np.zeros(vx.n, np.int64)  # 0: not reached yet
        if tiers:
            e, counts = gather(vx.p_indptr, aff)
            src, dst = np.repeat(aff, counts), vx.p_dst[e]
            ge, gcounts = gather(vx.mg_indptr, aff)
            src = np.concatenate([src, np.repeat(aff, gcounts)])
            dst = np.concatenate([dst, vx.g_node[vx.mg_group[ge]]])
            keep = state[dst] > 0
            back_indptr, back_src = csr(dst[keep], src[keep], vx.n)  # hurt CI -> the CIs that hurt it
        for tier in tiers:
            level = np.array([vx.pos[s.id] for s in services if s.tier == tier and s.id in vx.pos], np.int64)
            level = level[tier_of[level] == 0]
            while level.size:
                tier_of[level] = tier
                e, _ = gather(back_indptr, level)
                level = np.unique(back_src[e])
                level = level[tier_of[level] == 0]
        self._tiers = tier_of
        return tier_of

    # -- explanations -----------------------------------------------------------------------------
    def _explaining_edges(self) -> tuple[Array, Array]:
        """(src, dst) node ids of the edges among affected CIs that carry at least dst's final state."""
        vx, state, aff = self.vx, self.state, self.affected_ids
        e, counts = gather(vx.p_indptr, aff)
        src = np.repeat(aff, counts)
        dst = vx.p_dst[e]
        keep = (state[dst] > 0) & (np.minimum(state[src], vx.p_cap[e]) >= state[dst])
        srcs, dsts = [src[keep]], [dst[keep]]
        ge, gcounts = gather(vx.mg_indptr, aff)
        if ge.size:
            gsrc = np.repeat(aff, gcounts)
            groups = vx.mg_group[ge]
            qs = np.zeros(len(vx.g_info), np.int8)
            qs[self.touched] = vx._quorum(self.touched, state)
            gq = qs[groups]
            gdst = vx.g_node[groups]
            keep = (state[gdst] > 0) & (state[gsrc] >= gq) & (gq >= state[gdst])
            srcs.append(gsrc[keep])
            dsts.append(gdst[keep])
        return np.concatenate(srcs), np.concatenate(dsts)

    def _bfs_arrays(self) -> tuple[Array, Array]:
        """Per affected CI (by position in ``affected_ids``): distance from the causes (-1: not explained) and
        the chosen predecessor one level up (-1: none), the first by (name, id) among the candidates."""
        if self._bfs is not None:
            return self._bfs
        aff = self.affected_ids
        a = aff.size
        rank, by_rank = self._labels().rank, self._labels().by_rank
        src, dst = self._explaining_edges()
        ls, ld = np.searchsorted(aff, src), np.searchsorted(aff, dst)
        x_indptr, x_dst = csr(ls, ld, a)
        dist = np.full(a, -1, np.int64)
        pred = np.full(a, -1, np.int64)
        level = np.unique(np.searchsorted(aff, np.array(
            [self.vx.pos[c] for c in self.causes if c in self.vx.pos and self.state[self.vx.pos[c]] > 0], np.int64)))
        dist[level] = 0
        d = 0
        while level.size:
            e, counts = gather(x_indptr, level)
            s, t = np.repeat(level, counts), x_dst[e]
            new = dist[t] < 0
            s, t = s[new], t[new]
            if not t.size:
                break
            order = np.argsort(t, kind="stable")
            s, t = s[order], t[order]
            level, first = np.unique(t, return_index=True)
            d += 1
            dist[level] = d
            pred[level] = np.searchsorted(aff, by_rank[np.minimum.reduceat(rank[aff[s]], first)])
        self._bfs = (dist, pred)
        return self._bfs

    def _labels(self) -> Labels:
        return labels_of(self.vx)

    def path_to(self, ci_id: str) -> list[str]:
        if ci_id in self.causes:
            return [ci_id]
        i = self.vx.pos.get(ci_id)
        if i is None or self.state[i] == 0:
            return []
        return self._path(ci_id, int(np.searchsorted(self.affected_ids, i)))

    def _path(self, ci_id: str, v: int) -> list[str]:
        """The explaining chain to ``ci_id``, at position ``v`` of ``affected_ids``, walked on lists."""
        if self._walk is None:
            dist, pred = self._bfs_arrays()
            self._walk = (dist.tolist(), pred.tolist(), self.affected_ids.tolist())
        dist_l, pred_l, aff_l = self._walk
        if dist_l[v] < 0:
            return []
        ids = self.vx.ids
        path = [ci_id]
        while dist_l[v] > 0:
            v = pred_l[v]
            path.append(ids[aff_l[v]])
        return path[::-1]

    def services(self) -> list[AffectedService]:
        """``BlastRadius.services`` on arrays: services picked by a mask, named from the index's labels."""
        if self._services is not None:
            return self._services
        if self.outside:
            return super().services()
        labels, aff = self._labels(), self.affected_ids
        at = np.flatnonzero(labels.service[aff])
        found = aff[at].tolist()
        ids, pos, name, causes = self.vx.ids, self.vx.pos, labels.name, self.causes
        info = self.source.describe([ids[i] for i in found])
        out = []
        for i, v in zip(found, at.tolist(), strict=True):
            sid = ids[i]
            path_ids = [sid] if sid in causes else self._path(sid, v)
            out.append(AffectedService(sid, info[sid].name, info[sid].tier, STATES[self.state[i]],
                                       tuple(name[pos[p]] for p in path_ids), tuple(path_ids)))
        self._services = sorted(out, key=lambda s: (s.tier if s.tier is not None else 99, -s.state, s.name, s.id))
        return self._services

    def fast_stakeholders(self, limit: int | None, max_reasons: int | None) -> tuple[list[Any], int] | None:
        return vector_stakeholders(self, limit, max_reasons)

    def worst_affected(self, limit: int | None = None) -> list[tuple[str, State]]:
        """``BlastRadius.worst_affected`` on arrays: one lexsort by (worst state, rank of (name, id))."""
        if self.outside:
            return super().worst_affected(limit)
        aff = self.affected_ids
        order = np.lexsort((self._labels().rank[aff], -self.state[aff].astype(np.int64)))
        if limit is not None:
            order = order[:limit]
        ids, states = self.vx.ids, self.state
        return [(ids[i], STATES[states[i]]) for i in aff[order].tolist()]

    def labels(self, ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        labels, pos = self._labels(), self.vx.pos
        out: dict[str, tuple[str, str | None]] = {}
        rest = []
        for i in ids:
            p = pos.get(i)
            if p is None:
                rest.append(i)
            else:
                out[i] = (labels.name[p], labels.cls[p])
        if rest:
            out.update(super().labels(rest))
        return out


def vector_blast_radius(index: MemoryIndex, failures: Mapping[str, State]) -> VectorBlastRadius:
    """``engine.blast_radius`` on ``index`` with numpy (no ``max_hops``: always to the fixpoint)."""
    return VectorBlastRadius(VectorIndex.of(index), failures)
