"""Reads while a big batch is written into the same SQLite store object (the API's case: GET requests
served while a POST /batches of many CIs commits), read connections per thread vs one shared connection.

With one shared connection (the store before issue 16) every read waits on the store's lock for the
whole write transaction; with a read connection per thread (``cmdb.store.sqlite_access``) it reads
the last committed state at once. The script writes one batch of ``--cis`` new CIs on a thread
while the main thread reads a known CI in a loop, and prints the read latency of both set-ups side
by side, beside reads with no writer.

    python bench/reads_during_write.py [--cis 20000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.synthetic import synthetic_batches
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore


def big_batch(n: int) -> Batch:
    cis = [c for b in synthetic_batches(n, batch_size=n) for c in b.get("cis", [])]
    return Batch.from_dict({"source": "import:bench", "scope": "bench", "cis": cis})


def reads(store: SqliteStore, ci_id: str, until: threading.Event | None, at_least: int = 200) -> list[float]:
    out: list[float] = []
    while (until is not None and not until.is_set()) or (until is None and len(out) < at_least):
        t0 = time.perf_counter()
        assert store.get_ci(ci_id) is not None
        out.append(time.perf_counter() - t0)
        time.sleep(0.002)
    return out


def measure(path: Path, n: int, shared: bool) -> tuple[list[float], float]:
    store = SqliteStore(path)
    if shared:
        store._readers = None  # reads through the writer's connection, under its lock (the old layout)
    try:
        ingest(store, Batch.from_dict({"source": "manual", "cis": [{"class": "Server", "fqdn": "known.example"}]}))
        ci_id = store.find_by_name("known.example")[0]
        batch = big_batch(n)
        done = threading.Event()
        took: list[float] = []

        def write() -> None:
            t0 = time.perf_counter()
            ingest(store, batch)
            took.append(time.perf_counter() - t0)
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        lat = reads(store, ci_id, done)
        writer.join()
        return lat, took[0]
    finally:
        store.close()


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cis", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        idle_store = SqliteStore(Path(tmp) / "idle.db")
        ingest(idle_store, Batch.from_dict({"source": "manual", "cis": [{"class": "Server", "fqdn": "k.example"}]}))
        idle = reads(idle_store, idle_store.find_by_name("k.example")[0], None)
        idle_store.close()
        rows = [("no writer", idle, 0.0)]
        for label, shared in (("shared connection (before)", True), ("read connection per thread", False)):
            lat, write_s = measure(Path(tmp) / f"{shared}.db", args.cis, shared)
            rows.append((label, lat, write_s))
    print(f"get_ci latency while one batch of {args.cis:,} CIs is written by the same store object")
    print(f"{'layout':30} {'reads':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9} {'write s':>8}")
    for label, lat, write_s in rows:
        print(f"{label:30} {len(lat):6d} {statistics.median(lat) * 1000:8.2f} {pct(lat, 0.99):8.2f}"
              f" {max(lat) * 1000:9.1f} {write_s:8.2f}")


if __name__ == "__main__":
    main()
