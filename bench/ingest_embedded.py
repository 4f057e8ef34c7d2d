"""Embedded-store ingest throughput: first load and re-load of synthetic estates.

Prints CIs/s and relationships/s for the first load, and the time of a re-load of the same data
(which must change nothing and write no history event), side by side with a raw baseline: bare
``executemany`` inserts of the same rows into an unindexed SQLite table, i.e. what the disk and
SQLite alone cost before identification, reconciliation, history and indexes.

    python bench/ingest_embedded.py [--sizes 10000,100000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import synthetic_batches
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore


def load_all(store: SqliteStore, docs: list[dict[str, Any]]) -> tuple[float, int, int, int]:
    """Ingest every batch; returns (seconds, CIs, relationships, history events)."""
    cis = events = 0
    start = time.perf_counter()
    for doc in docs:
        res = ingest(store, Batch.from_dict(doc))
        cis += res.created + res.updated + res.unchanged
        events += res.events
    return time.perf_counter() - start, cis, sum(len(d.get("relationships") or []) for d in docs), events


def raw_baseline(path: Path, docs: list[dict[str, Any]]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE ci(ref TEXT, class TEXT, attrs TEXT)")
    db.execute("CREATE TABLE rel(type TEXT, src TEXT, dst TEXT)")
    start = time.perf_counter()
    for doc in docs:
        db.execute("BEGIN")
        db.executemany("INSERT INTO ci VALUES(?,?,?)",
                       [(c.get("ref"), c["class"], json.dumps(c)) for c in doc.get("cis") or []])
        rels = doc.get("relationships") or []
        db.executemany("INSERT INTO rel VALUES(?,?,?)",
                       [(r["type"], json.dumps(r["from"]), json.dumps(r["to"])) for r in rels])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    print(f"{'CIs':>8} {'rels':>8} | {'first load s':>12} {'CIs/s':>8} {'rels/s':>8} {'events':>8} | "
          f"{'reload s':>8} {'reload ev':>9} | {'raw insert s':>12} {'cmdb/raw':>8}")
    for n in (int(s) for s in args.sizes.split(",")):
        docs = list(synthetic_batches(n, batch_size=args.batch))
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "bench.db")
            first_s, cis, rels, events = load_all(store, docs)
            again_s, _, _, again_events = load_all(store, docs)
            stats = store.stats()
            store.close()
            raw_s = raw_baseline(Path(tmp) / "raw.db", docs)
        assert stats["cis"] == n, stats["cis"]
        assert again_events == 0, f"re-load wrote {again_events} history events"
        print(f"{n:>8} {rels:>8} | {first_s:>12.2f} {cis / first_s:>8.0f} {rels / first_s:>8.0f} {events:>8} | "
              f"{again_s:>8.2f} {again_events:>9} | {raw_s:>12.2f} {first_s / raw_s:>7.1f}x")


if __name__ == "__main__":
    main()
