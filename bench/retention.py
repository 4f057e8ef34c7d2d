"""Retention and conflict history: what pruning costs, and what keeping ended conflicts costs the open ones.

Per store, side by side:

* ``prune outbox``: ``--messages`` sent messages older than the cut-off and as many young ones; the time
  of a dry run (a count) and of the prune, and the rate per 1,000 removed (enqueueing them is the baseline);
* ``open conflicts``: ``conflicts()`` (open ones), ``stats()`` and an ageing batch's ``open_conflicts``
  look-up with ``--open`` open conflicts, then again once ``--closed`` closed ones are kept beside them
  (before conflict history they were deleted): the ratio is what keeping the history costs.

    python bench/retention.py [--messages 5000] [--open 100] [--closed 20000] [--neo4j]

Neo4j: ``CMDB_TEST_NEO4J_URI`` / ``_USER`` / ``_PASSWORD``, or one started here (scripts/neo4j_server.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from cmdb.store.base import BatchReader, ChangeSet, Conflict, GraphStore, RunRecord, iso  # noqa: E402
from cmdb.store.sqlite import SqliteStore  # noqa: E402
from cmdb.store.tasks import new_message  # noqa: E402

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def timed(fn: Callable[[], Any], repeat: int = 5) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def once(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def write(store: GraphStore, cs: ChangeSet) -> None:
    def plan(reader: BatchReader) -> ChangeSet:
        return cs

    store.write_batch(plan)


def conflicts(n: int, prefix: str) -> list[Conflict]:
    at = iso(NOW)
    return [Conflict(f"conflict-{prefix}-{i}", at, "bench", "run-bench", f"item {i}", "Server",
                     {f"device:serial_number={prefix}{i}": f"ci-{prefix}-{i}a"},
                     [f"ci-{prefix}-{i}a", f"ci-{prefix}-{i}b"])
            for i in range(n)]


def measure(name: str, store: GraphStore, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {"store": name}
    old, young = NOW - timedelta(days=200), NOW - timedelta(days=1)
    msgs = [new_message("email", "a@example.com", "s", "b", f"k-{i}", now=old if i % 2 else young)
            for i in range(2 * args.messages)]
    row["enqueue_s"] = once(lambda: store.enqueue_messages(msgs))
    for at in (old, young):  # delivered at their time (a mark per message, as the deliverer does)
        while batch := store.claim_messages(at, limit=1000):
            for m in batch:
                store.mark_sent(m.id, at)
    cut = iso(NOW - timedelta(days=90))
    row["dry_s"] = once(lambda: row.__setitem__("would", store.prune_records("outbox", cut, dry_run=True)))
    row["prune_s"] = once(lambda: row.__setitem__("removed", store.prune_records("outbox", cut)))

    def run(i: int) -> RunRecord:
        return RunRecord(f"run-bench-{i}", "bench", None, False, iso(NOW), iso(NOW))

    write(store, ChangeSet(run=run(0), conflicts=conflicts(args.open, "open")))
    probe = [f"device:serial_number=open{i}" for i in range(0, args.open, 10)]

    def reader_look_up() -> None:
        def plan(reader: BatchReader) -> ChangeSet:
            reader.open_conflicts(probe)
            return ChangeSet(run=run(9))
        store.write_batch(plan)

    row["before"] = [timed(lambda: store.conflicts()), timed(store.stats), timed(reader_look_up)]
    ended = conflicts(args.closed, "closed")
    for start in range(0, len(ended), 5000):
        chunk = ended[start:start + 5000]
        write(store, ChangeSet(run=run(1), conflicts=chunk))
        write(store, ChangeSet(run=run(2), conflicts_closed=[c.id for c in chunk]))
    assert len(store.conflicts()) == args.open and len(store.conflicts("closed")) == args.closed
    row["after"] = [timed(lambda: store.conflicts()), timed(store.stats), timed(reader_look_up)]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5_000, help="old sent messages (and as many young ones)")
    ap.add_argument("--open", type=int, default=100)
    ap.add_argument("--closed", type=int, default=20_000)
    ap.add_argument("--neo4j", action="store_true", help="also on Neo4j")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStore(Path(tmp) / "bench.db")
        try:
            rows.append(measure("sqlite", sqlite, args))
        finally:
            sqlite.close()
    if args.neo4j:
        from bench.neo4j_bench_store import bench_neo4j

        with bench_neo4j() as (neo, _server):
            neo.clear()
            rows.append(measure("neo4j", neo, args))

    names = [r["store"] for r in rows]
    print(f"\nretention: {args.messages} old + {args.messages} young sent messages\n")
    print(f"{'':<44}" + "".join(f"{n:>12}" for n in names))
    for key, label in (("enqueue_s", "enqueue all (s, baseline)"), ("dry_s", "prune --dry-run: count (s)"),
                       ("prune_s", "prune outbox (s)")):
        print(f"{label:<44}" + "".join(f"{r[key]:>12.3f}" for r in rows))
    print(f"{'removed (young kept)':<44}" + "".join(f"{r['removed']:>12}" for r in rows))
    print(f"{'prune ms per 1,000 removed':<44}" + "".join(f"{1000 * r['prune_s'] / r['removed'] * 1000:>12.1f}"
                                                          for r in rows))
    print(f"{'prune / enqueue':<44}" + "".join(f"{r['prune_s'] / r['enqueue_s']:>11.2f}x" for r in rows))
    print(f"\nconflict history: {args.open} open, then {args.closed} closed ones kept beside them (median of 5)\n")
    print(f"{'':<44}" + "".join(f"{n + ' before':>14}{n + ' after':>14}{'ratio':>8}" for n in names))
    for i, label in enumerate(("conflicts() open ones (ms)", "stats() (ms)", "batch open_conflicts look-up (ms)")):
        print(f"{label:<44}" + "".join(f"{1000 * r['before'][i]:>14.2f}{1000 * r['after'][i]:>14.2f}"
                                        f"{r['after'][i] / r['before'][i]:>7.2f}x" for r in rows))


if __name__ == "__main__":
    main()
