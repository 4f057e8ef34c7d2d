"""Blast-radius latency on synthetic estates, beside scipy's breadth-first reachability.

For each size: load a synthetic estate (``bench.synthetic``) into a SQLite store, then time the
blast radius (state propagation with quorum, cycles, caps) of 100 random start CIs and of the 10
CIs with the largest blast radius, three ways on the same graph:

* ``store``: the engine expanding frontiers on the embedded store (one ``neighbors`` call per hop);
* ``index``: the Python engine on the in-memory index (``MemoryIndex.from_store``);
* ``vector``: the numpy engine (``impact.vector``) on the same index: affected CIs with states, to
  the fixpoint (the dicts and explanation paths are built lazily, only when asked for);
* ``scipy``: ``scipy.sparse.csgraph.breadth_first_order`` on a CSR matrix of the same impact edges,
  the physical-limit anchor (pure reachability: no states, no quorum, no explanation).

Every state > ok propagates across every impact edge, so the engine's affected set equals plain
reachability; the bench checks that all sizes agree. Start CIs are drawn from the CIs that
have at least one impact edge. scipy is a bench-only dependency (``pip install scipy``).

``--direct`` skips SQLite: the index is built straight from the generated batches (CIs keyed by
their batch ``ref``; Service and Cluster attributes as the store would describe them), so 1M CIs
load in about a minute instead of more than twenty; the store column is then left out.

    python bench/impact.py [--sizes 100000,1000000] [--starts 100] [--top 10] [--skip-store-top] [--direct]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse.csgraph import breadth_first_order  # type: ignore[import-untyped,unused-ignore]

from bench.synthetic import synthetic_batches
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from impact.engine import blast_radius
from impact.index import MemoryIndex
from impact.source import NodeInfo, StoreSource
from impact.states import State
from impact.vector import VectorIndex

CANDIDATES_FOR_TOP = 300  # CIs with the highest impact out-degree, among which the largest radii are sought


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    n = fn()
    return time.perf_counter() - start, n


def csr_of(index: MemoryIndex) -> tuple[Any, dict[str, int]]:
    pairs = list(index.hurts())
    ids = sorted({u for u, _v in pairs} | {v for _u, v in pairs})
    pos = {c: i for i, c in enumerate(ids)}
    rows = [pos[u] for u, _v in pairs]
    cols = [pos[v] for _u, v in pairs]
    data = np.ones(len(rows), dtype=np.int8)
    return csr_matrix((data, (rows, cols)), shape=(len(ids), len(ids))), pos


def load(n: int, path: Path) -> tuple[SqliteStore, float]:
    store = SqliteStore(path)
    start = time.perf_counter()
    for doc in synthetic_batches(n, batch_size=20_000):
        ingest(store, Batch.from_dict(doc))
    return store, time.perf_counter() - start


def _end_key(ref: dict[str, Any]) -> str:
    """The batch ``ref`` a synthetic relationship end points at (names and hostnames are refs)."""
    if "name" in ref:
        return str(ref["name"])
    if "fqdn" in ref:
        return str(ref["fqdn"]).split(".", 1)[0]
    return str(ref.get("email", ref))


def load_direct(n: int) -> tuple[MemoryIndex, int, float]:
    """The impact index straight from the generated batches, no store (``--direct``)."""
    start = time.perf_counter()
    index = MemoryIndex.empty()
    rels = 0
    for doc in synthetic_batches(n, batch_size=20_000):
        for c in doc.get("cis", ()):
            if c["class"] in ("Service", "Cluster"):
                tier = c.get("tier") if c["class"] == "Service" else None
                attrs = {k: v for k, v in c.items() if k not in ("ref", "class")}
                index.nodes[c["ref"]] = NodeInfo(c["ref"], c.get("name", c["ref"]), c["class"],
                                                 int(tier) if isinstance(tier, int) else None, attrs)
        for r in doc.get("relationships", ()):
            rels += 1
            index.add_edge(r["type"], _end_key(r["from"]), _end_key(r["to"]))
    return index, rels, time.perf_counter() - start


COLUMNS = ("store", "index", "vector", "scipy")


def row(label: str, n: int, sizes: list[int], t: dict[str, list[float]]) -> None:
    cols = [f"{label:<14} {n:>8} {statistics.median(sizes):>9.0f} {max(sizes):>8}"]
    for k in COLUMNS:
        v = t.get(k)
        cols.append(f"{pct(v, 50) * 1000:>9.2f} {pct(v, 95) * 1000:>9.2f}" if v else f"{'-':>9} {'-':>9}")
    sp = t["scipy"]
    for k in ("index", "vector"):
        cols.append(f"{pct(t[k], 50) / pct(sp, 50):>6.1f}x {pct(t[k], 95) / pct(sp, 95):>6.1f}x")
    print(" | ".join(cols), flush=True)


def bench_size(n: int, starts: int, top: int, store_top: bool, seed: int, direct: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store: SqliteStore | None = None
        if direct:
            index, rels, load_s = load_direct(n)
            index_s = 0.0
        else:
            store, load_s = load(n, Path(tmp) / "bench.db")
            rels = store.stats()["relationships"]
            t0 = time.perf_counter()
            index = MemoryIndex.from_store(store)
            index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        csr, pos = csr_of(index)
        csr_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        VectorIndex.of(index)
        vec_s = time.perf_counter() - t0
        how = "direct from batches, no store" if direct else "SQLite"
        print(f"# {n} CIs, {rels} relationships ({index.edge_count} impact edges), {how}: load "
              f"{load_s:.1f}s, index build {index_s:.1f}s, CSR build {csr_s:.1f}s, vector build {vec_s:.1f}s",
              flush=True)
        source = StoreSource(store) if store is not None else None
        rng = random.Random(seed)
        pool = sorted(pos)
        sample = rng.sample(pool, starts)
        out_deg = np.diff(csr.indptr)
        ids_by_pos = {i: c for c, i in pos.items()}
        cands = [ids_by_pos[int(i)] for i in np.argsort(-out_deg)[:CANDIDATES_FOR_TOP]]
        reach = {c: len(breadth_first_order(csr, pos[c], directed=True, return_predecessors=False)) for c in cands}
        largest = sorted(reach, key=lambda c: -reach[c])[:top]
        for label, group, with_store in (("random", sample, True), (f"largest {top}", largest, store_top)):
            times: dict[str, list[float]] = {"index": [], "vector": [], "scipy": []}
            if with_store and source is not None:
                times["store"] = []
            sizes = []
            for c in group:
                ti, ni = timed(lambda c=c: len(blast_radius(index, {c: State.DOWN}, vector=False).states))  # type: ignore[misc]
                tv, nv = timed(lambda c=c: blast_radius(index, {c: State.DOWN}).count())  # type: ignore[misc]
                tsp, nsp = timed(lambda c=c: len(breadth_first_order(csr, pos[c], directed=True,  # type: ignore[misc]
                                                                     return_predecessors=False)))
                assert ni == nsp == nv, (c, ni, nsp, nv)
                times["index"].append(ti)
                times["vector"].append(tv)
                times["scipy"].append(tsp)
                if "store" in times and source is not None:
                    ts, ns = timed(lambda c=c: len(blast_radius(source, {c: State.DOWN}).states))  # type: ignore[misc]
                    assert ns == ni, (c, ns, ni)
                    times["store"].append(ts)
                sizes.append(ni)
            row(label, n, sizes, times)
        if store is not None:
            store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--skip-store-top", action="store_true", help="skip the store engine on the largest radii")
    ap.add_argument("--direct", action="store_true",
                    help="build the index straight from the generated batches (no SQLite, no store column)")
    args = ap.parse_args()
    print(f"{'starts':<14} {'CIs':>8} {'radius p50':>9} {'max':>8} | {'store p50':>9} {'p95 ms':>9} | "
          f"{'index p50':>9} {'p95 ms':>9} | {'vector p50':>9} {'p95 ms':>9} | {'scipy p50':>9} {'p95 ms':>9} | "
          f"index/scipy p50, p95 | vector/scipy p50, p95")
    for n in (int(s) for s in args.sizes.split(",")):
        bench_size(n, args.starts, args.top, not args.skip_store_top, args.seed, args.direct)


if __name__ == "__main__":
    main()
