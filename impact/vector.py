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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from impact.index import MemoryIndex
from impact.radius import BlastRadius
from impact.source import GroupInfo
from impact.states import State

STATES = (State.OK, State.AT_RISK, State.DEGRADED, State.DOWN)
DOWN = np.int8(State.DOWN)
DEGRADED = np.int8(State.DEGRADED)

Array = Any  # numpy arrays (numpy is untyped for mypy here)


def _gather(indptr: Array, rows: Array) -> tuple[Array, Array]:
    """Positions of every entry of CSR ``rows`` (concatenated), and how many each row has."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), counts
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total), counts


def _csr(rows: Array, cols: Array, n: int, *extra: Array) -> tuple[Array, ...]:
    """(indptr, cols, *extra) sorted by row (stable), for ``n`` rows."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return (indptr, cols[order], *(e[order] for e in extra))


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
        p_indptr, p_dst, p_cap, p_type = _csr(np.array(src, np.int64), np.array(dst, np.int64), n,
                                              np.array(cap, np.int8), np.array(typ, np.int16))
        mg = np.array(m_group, np.int64)
        mm = np.array(m_member, np.int64)
        gm_indptr, gm_member = _csr(mg, mm, len(group_ids))
        mg_indptr, mg_group = _csr(mm, mg, n)
        return cls(index, ids, pos, types, p_indptr, p_dst, p_cap, p_type, g_node,
                   np.array([i.required for i in g_info], np.int64), g_info, gm_indptr, gm_member,
                   mg_indptr, mg_group)

    # -- propagation ------------------------------------------------------------------------------
    def _quorum(self, groups: Array, state: Array) -> Array:
        """``rules.quorum_state`` of each group in ``groups`` (all have members) under ``state``."""
        e, counts = _gather(self.gm_indptr, groups)
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
            e, counts = _gather(self.p_indptr, frontier)
            if e.size:
                dst = self.p_dst[e]
                val = np.minimum(np.repeat(state[frontier], counts), self.p_cap[e])
                up = val > state[dst]
                dst, val = dst[up], val[up]
                if dst.size:
                    for s in np.unique(val):  # ascending: the highest value written last wins
                        state[dst[val == s]] = s
                    raised.append(np.unique(dst))
            ge, _ = _gather(self.mg_indptr, frontier)
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
        self._bfs: tuple[Array, Array, Array, Array] | None = None
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
        """``BlastRadius.service_tiers`` on arrays: a reverse BFS per tier, best tier first, over every impact
        edge among affected CIs (plain edges, and member -> group), as ``preds`` holds them."""
        services = self.services()
        tiers = sorted({s.tier for s in services if s.tier is not None})
        if not tiers or self.outside:
            return super().service_tiers()  # causes outside the index: the general walk
        vx, state, aff = self.vx, self.state, self.affected_ids
        e, counts = _gather(vx.p_indptr, aff)
        src, dst = np.repeat(aff, counts), vx.p_dst[e]
        ge, gcounts = _gather(vx.mg_indptr, aff)
        src = np.concatenate([src, np.repeat(aff, gcounts)])
        dst = np.concatenate([dst, vx.g_node[vx.mg_group[ge]]])
        keep = state[dst] > 0
        back_indptr, back_src = _csr(dst[keep], src[keep], vx.n)  # hurt CI -> the CIs that hurt it
        tier_of = np.zeros(vx.n, np.int64)  # 0: not reached yet
        for tier in tiers:
            level = np.array([vx.pos[s.id] for s in services if s.tier == tier and s.id in vx.pos], np.int64)
            level = level[tier_of[level] == 0]
            while level.size:
                tier_of[level] = tier
                e, _ = _gather(back_indptr, level)
                level = np.unique(back_src[e])
                level = level[tier_of[level] == 0]
        reached = np.flatnonzero(tier_of)
        ids = vx.ids
        return dict(zip([ids[i] for i in reached.tolist()], tier_of[reached].tolist(), strict=True))

    # -- explanations -----------------------------------------------------------------------------
    def _explaining_edges(self) -> tuple[Array, Array]:
        """(src, dst) node ids of the edges among affected CIs that carry at least dst's final state."""
        vx, state, aff = self.vx, self.state, self.affected_ids
        e, counts = _gather(vx.p_indptr, aff)
        src = np.repeat(aff, counts)
        dst = vx.p_dst[e]
        keep = (state[dst] > 0) & (np.minimum(state[src], vx.p_cap[e]) >= state[dst])
        srcs, dsts = [src[keep]], [dst[keep]]
        ge, gcounts = _gather(vx.mg_indptr, aff)
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

    def _bfs_arrays(self) -> tuple[Array, Array, Array, Array]:
        """Per affected CI (by position in ``affected_ids``): distance and its candidate predecessors."""
        if self._bfs is not None:
            return self._bfs
        aff = self.affected_ids
        a = aff.size
        src, dst = self._explaining_edges()
        ls, ld = np.searchsorted(aff, src), np.searchsorted(aff, dst)
        x_indptr, x_dst = _csr(ls, ld, a)
        dist = np.full(a, -1, np.int64)
        c_start = np.zeros(a, np.int64)
        c_count = np.zeros(a, np.int64)
        cand: list[Array] = []
        level = np.unique(np.searchsorted(aff, np.array(
            [self.vx.pos[c] for c in self.causes if c in self.vx.pos and self.state[self.vx.pos[c]] > 0], np.int64)))
        dist[level] = 0
        d, offset = 0, 0
        while level.size:
            e, counts = _gather(x_indptr, level)
            s, t = np.repeat(level, counts), x_dst[e]
            new = dist[t] < 0
            s, t = s[new], t[new]
            if not t.size:
                break
            order = np.argsort(t, kind="stable")
            s, t = s[order], t[order]
            level, first, n = np.unique(t, return_index=True, return_counts=True)
            d += 1
            dist[level] = d
            c_start[level] = first + offset
            c_count[level] = n
            cand.append(s)
            offset += s.size
        cands = np.concatenate(cand) if cand else np.empty(0, np.int64)
        self._bfs = (dist, c_start, c_count, cands)
        return self._bfs

    def path_to(self, ci_id: str) -> list[str]:
        if ci_id in self.causes:
            return [ci_id]
        i = self.vx.pos.get(ci_id)
        if i is None or self.state[i] == 0:
            return []
        dist, c_start, c_count, cands = self._bfs_arrays()
        aff, ids = self.affected_ids, self.vx.ids
        v = int(np.searchsorted(aff, i))
        if dist[v] < 0:
            return []
        path = [ci_id]
        while dist[v] > 0:
            opts = np.unique(cands[c_start[v]:c_start[v] + c_count[v]]).tolist()
            if len(opts) == 1:
                v = opts[0]
            else:
                names = self.source.describe([ids[aff[o]] for o in opts])
                v = min(opts, key=lambda o: (names[ids[aff[o]]].name if ids[aff[o]] in names else ids[aff[o]],
                                             ids[aff[o]]))
            path.append(ids[aff[v]])
        return path[::-1]


def vector_blast_radius(index: MemoryIndex, failures: Mapping[str, State]) -> VectorBlastRadius:
    """``engine.blast_radius`` on ``index`` with numpy (no ``max_hops``: always to the fixpoint)."""
    return VectorBlastRadius(VectorIndex.of(index), failures)
