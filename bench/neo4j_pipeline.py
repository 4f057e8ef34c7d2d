"""Does the pipelined loader pay? ``ingest_many`` with the pipeline forced on and off, per estate size.

On one Neo4j server (started here with scripts/neo4j_server.py, or ``CMDB_TEST_NEO4J_URI`` with
``CMDB_TEST_NEO4J_USER`` / ``CMDB_TEST_NEO4J_PASSWORD``), for each ``--sizes`` estate of
``bench.synthetic`` in batches of ``--batch`` items: first loads into an emptied store, pipelined
(batch N+1 planned while a writer process writes N) and as a plain ``ingest`` loop, alternating,
``--repeat`` times each after a warm-up load; the median of each and their ratio (above 1: the
pipeline pays). ``ingest_many``'s own choice (``PIPELINE_MIN_BATCHES``) is printed beside, so the
threshold can be read off the same run.

    python bench/neo4j_pipeline.py [--sizes 20000,100000] [--batch 5000] [--repeat 2] [--warmup 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.neo4j_bench_store import bench_neo4j  # noqa: E402
from bench.synthetic import synthetic_batches  # noqa: E402
from cmdb.batch import Batch  # noqa: E402
from cmdb.ingest_pipeline import PIPELINE_MIN_BATCHES, ingest_many  # noqa: E402
from cmdb.store.neo4j import Neo4jStore  # noqa: E402


def timed_load(store: Neo4jStore, docs: list[dict[str, Any]], pipeline: bool | None) -> float:
    store.clear()
    start = time.perf_counter()
    for _ in ingest_many(store, (Batch.from_dict(doc) for doc in docs), pipeline=pipeline):
        pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20000,100000", help="estate sizes in CIs, comma-separated")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=20_000)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with bench_neo4j() as (neo, _server):
        if args.warmup:
            timed_load(neo, list(synthetic_batches(args.warmup, seed=99, batch_size=args.batch)), None)
        for n in sizes:
            docs = list(synthetic_batches(n, batch_size=args.batch))
            piped: list[float] = []
            loop: list[float] = []
            for i in range(args.repeat):  # alternating, so drift of the machine's speed hits both alike
                for pipeline in ((True, False) if i % 2 == 0 else (False, True)):
                    (piped if pipeline else loop).append(timed_load(neo, docs, pipeline))
                    print(f"# {n} CIs, {'pipelined' if pipeline else 'loop'}: "
                          f"{(piped if pipeline else loop)[-1]:.1f} s", flush=True)
            rows.append((n, len(docs), statistics.median(piped), statistics.median(loop)))
    print(f"batches of {args.batch} items; first loads into an emptied store, median of {args.repeat} each")
    print(f"{'CIs':>8} {'batches':>8} {'pipelined s':>12} {'loop s':>8} {'loop/pipelined':>15}"
          f" {'ingest_many picks':>18}")
    for n, b, p, lo in rows:
        print(f"{n:>8,} {b:>8} {p:>12.1f} {lo:>8.1f} {lo / p:>14.2f}x "
              f"{'pipeline' if b >= PIPELINE_MIN_BATCHES else 'loop':>18}")


if __name__ == "__main__":
    main()
