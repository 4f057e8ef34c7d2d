"""Blast-radius latency on synthetic estates, beside scipy's breadth-first reachability.

For each size: load a synthetic estate (``cmdb.synthetic``) into a SQLite store, then time the
blast radius (state propagation with quorum, cycles, caps) of 100 random start CIs and of the 10
CIs with the largest blast radius, three ways on the same graph:

* ``store``: the engine expanding frontiers on the embedded store (one ``neighbors`` call per hop);
* ``index``: the engine on the in-memory index (``MemoryIndex.from_store``);
* ``scipy``: ``scipy.sparse.csgraph.breadth_first_order`` on a CSR matrix of the same impact edges,
  the physical-limit anchor (pure reachability: no states, no quorum, no explanation).

Every state > ok propagates across every impact edge, so the engine's affected set equals plain
reachability; the bench checks that the three sizes agree. Start CIs are drawn from the CIs that
have at least one impact edge. scipy is a bench-only dependency (``pip install scipy``).

    python bench/impact.py [--sizes 100000,1000000] [--starts 100] [--top 10] [--skip-store-top]
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

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from cmdb.synthetic import synthetic_batches
from impact.engine import blast_radius
from impact.index import MemoryIndex
from impact.source import StoreSource
from impact.states import State

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


def row(label: str, n: int, sizes: list[int], t: dict[str, list[float]]) -> None:
    cols = [f"{label:<14} {n:>8} {statistics.median(sizes):>9.0f} {max(sizes):>8}"]
    for k in ("store", "index", "scipy"):
        v = t.get(k)
        cols.append(f"{pct(v, 50) * 1000:>9.2f} {pct(v, 95) * 1000:>9.2f}" if v else f"{'-':>9} {'-':>9}")
    idx, sp = t["index"], t["scipy"]
    cols.append(f"{pct(idx, 50) / pct(sp, 50):>7.1f}x {pct(idx, 95) / pct(sp, 95):>7.1f}x")
    print(" | ".join(cols), flush=True)


def bench_size(n: int, starts: int, top: int, store_top: bool, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, load_s = load(n, Path(tmp) / "bench.db")
        st = store.stats()
        t0 = time.perf_counter()
        index = MemoryIndex.from_store(store)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        csr, pos = csr_of(index)
        csr_s = time.perf_counter() - t0
        print(f"# {n} CIs, {st['relationships']} relationships ({index.edge_count} impact edges): load "
              f"{load_s:.1f}s, index build {index_s:.1f}s, CSR build {csr_s:.1f}s", flush=True)
        source = StoreSource(store)
        rng = random.Random(seed)
        pool = sorted(pos)
        sample = rng.sample(pool, starts)
        out_deg = np.diff(csr.indptr)
        ids_by_pos = {i: c for c, i in pos.items()}
        cands = [ids_by_pos[int(i)] for i in np.argsort(-out_deg)[:CANDIDATES_FOR_TOP]]
        reach = {c: len(breadth_first_order(csr, pos[c], directed=True, return_predecessors=False)) for c in cands}
        largest = sorted(reach, key=lambda c: -reach[c])[:top]
        for label, group, with_store in (("random", sample, True), (f"largest {top}", largest, store_top)):
            times: dict[str, list[float]] = {"index": [], "scipy": []}
            if with_store:
                times["store"] = []
            sizes = []
            for c in group:
                ti, ni = timed(lambda c=c: len(blast_radius(index, {c: State.DOWN}).states))  # type: ignore[misc]
                tsp, nsp = timed(lambda c=c: len(breadth_first_order(csr, pos[c], directed=True,  # type: ignore[misc]
                                                                     return_predecessors=False)))
                assert ni == nsp, (c, ni, nsp)
                times["index"].append(ti)
                times["scipy"].append(tsp)
                if with_store:
                    ts, ns = timed(lambda c=c: len(blast_radius(source, {c: State.DOWN}).states))  # type: ignore[misc]
                    assert ns == ni, (c, ns, ni)
                    times["store"].append(ts)
                sizes.append(ni)
            row(label, n, sizes, times)
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--skip-store-top", action="store_true", help="skip the store engine on the largest radii")
    args = ap.parse_args()
    print(f"{'starts':<14} {'CIs':>8} {'radius p50':>9} {'max':>8} | {'store p50':>9} {'p95 ms':>9} | "
          f"{'index p50':>9} {'p95 ms':>9} | {'scipy p50':>9} {'p95 ms':>9} | index/scipy p50, p95")
    for n in (int(s) for s in args.sizes.split(",")):
        bench_size(n, args.starts, args.top, not args.skip_store_top, args.seed)


if __name__ == "__main__":
    main()
