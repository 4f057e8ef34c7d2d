"""Neo4j ingest throughput and blast-radius latency, beside a naive loader and the SQLite store.

On one Neo4j server (started here with scripts/neo4j_server.py, or ``CMDB_TEST_NEO4J_URI`` with
``CMDB_TEST_NEO4J_USER`` / ``CMDB_TEST_NEO4J_PASSWORD``) and the same synthetic estate
(``bench.synthetic``):

* batched: ``ingest_many`` of 5,000-item batches through ``Neo4jStore`` (identification, history,
  sightings, one transaction per batch, the next batch planned while a writer process writes one),
  as ``cmdb load`` does, after a warm-up load; the median of ``--repeat`` first loads, since timings
  on a small VM vary by about 10% from one load to the next; and once with ``ingest`` one batch at
  a time (no pipeline), to show what the pipeline adds;
* naive: one ``MERGE`` per item per transaction, the way a first loader is often written, timed
  on a sample (``--naive-sample`` CIs and as many relationships) and extrapolated to the estate;
* re-load of the unchanged estate (time, and that it wrote no history event);
* floor: the same CIs and relationships created bare (an id each, nothing else), the least any
  loader must spend on this server;
* CPU per CI of the median pipelined load and of the floor: this process, the writer process and the
  Neo4j server (when the bench started it), and what that allows on this machine's cores, since on a
  2-core VM the load is bound by CPU, not by waiting;
* blast radius: who depends on a CI (the closure over incoming ``to_source`` edges) for 100
  random CIs: ``Neo4jStore.reachable`` (one server-side query), frontier expansion with
  ``neighbors()`` on Neo4j and on a SQLite store loaded with the same estate;
* search for one server by an identity attribute (fqdn, served by the key index) and by one that is
  not a key alone (hostname, a scan of every CI).

    python bench/neo4j_ingest.py [--cis 100000] [--batch 5000] [--naive-sample 2000] [--starts 100]
                                 [--repeat 3] [--warmup 20000]

The naive loader's Cypher lives here, not in cmdb/store, because it is a baseline, not product code.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.neo4j_bench_store import bench_neo4j  # noqa: E402
from bench.synthetic import synthetic_batches  # noqa: E402
from cmdb.batch import Batch  # noqa: E402
from cmdb.identity import identity_keys  # noqa: E402
from cmdb.ingest import ingest  # noqa: E402
from cmdb.ingest_pipeline import ingest_many  # noqa: E402
from cmdb.model import default_schema  # noqa: E402
from cmdb.store.base import GraphStore, SearchQuery  # noqa: E402
from cmdb.store.neo4j import Neo4jStore  # noqa: E402
from cmdb.store.sqlite import SqliteStore  # noqa: E402

SCHEMA = default_schema()
UPSTREAM = sorted(t for t, r in SCHEMA.relationships.items() if r.impact == "to_source")


def primary_key(item: dict[str, Any]) -> str:
    """The strongest identity key of a batch item or identity reference."""
    attrs = {k: v for k, v in item.items() if k not in ("ref", "class")}
    keys = identity_keys(SCHEMA, item["class"], SCHEMA.validate(item["class"], attrs))
    return next(iter(keys))


class CpuMeter:
    """CPU seconds spent, during a ``with`` block, by this process, its reaped children (the
    pipeline's writer process) and the Neo4j server process, when its pid is known."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.main = self.children = 0.0
        self.server: float | None = None

    def _server_cpu(self) -> float | None:
        if self.server_pid is None:
            return None
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    @staticmethod
    def _children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> CpuMeter:
        self._start = (time.process_time(), self._children_cpu(), self._server_cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        main, children, server = self._start
        self.main = time.process_time() - main
        self.children = self._children_cpu() - children
        now = self._server_cpu()
        self.server = now - server if now is not None and server is not None else None

    def per_item(self, n: int) -> str:
        """'main X + writer Y + server Z = T µs', per one of ``n`` items."""
        parts = [("this process", self.main), ("writer", self.children)]
        if self.server is not None:
            parts.append(("Neo4j server", self.server))
        # the floor has no writer process: leave out a zero writer rather than print it
        text = " + ".join(f"{name} {sec / n * 1e6:,.0f}" for name, sec in parts if sec or name != "writer")
        return f"{text} = {sum(sec for _, sec in parts) / n * 1e6:,.0f} µs"

    def total(self) -> float:
        return self.main + self.children + (self.server or 0.0)


def load(store: GraphStore, docs: list[dict[str, Any]], *, pipelined: bool = True) -> tuple[float, int]:
    """Ingest every batch, as ``cmdb load`` does (``ingest_many``) or one ``ingest`` at a time;
    (seconds, history events written)."""
    start = time.perf_counter()
    if pipelined:
        events = sum(r.events for r in ingest_many(store, (Batch.from_dict(doc) for doc in docs)))
    else:
        events = sum(ingest(store, Batch.from_dict(doc)).events for doc in docs)
    return time.perf_counter() - start, events


def naive_load(store: Neo4jStore, docs: list[dict[str, Any]], sample: int) -> tuple[float, float]:
    """(CIs/s, rels/s) of one MERGE per item per transaction, on ``sample`` items of each kind."""
    driver = store._driver
    db = store.database
    driver.execute_query("CREATE CONSTRAINT naive_key IF NOT EXISTS FOR (n:NaiveCI) REQUIRE n.key IS UNIQUE",
                         database_=db)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=db)
    cis = [c for d in docs for c in d.get("cis") or []][:sample]
    rels = [r for d in docs for r in d.get("relationships") or []][:sample]

    def props(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k != "ref" and not isinstance(v, dict)}

    def merge_ci(tx: Any, key: str, values: dict[str, Any]) -> None:
        tx.run("MERGE (n:NaiveCI {key: $key}) SET n += $props", key=key, props=values).consume()

    def merge_rel(tx: Any, rtype: str, a: str, b: str) -> None:
        tx.run(f"MATCH (a:NaiveCI {{key: $a}}) MATCH (b:NaiveCI {{key: $b}}) MERGE (a)-[x:{rtype}]->(b)"
               " SET x.naive = true", a=a, b=b).consume()

    with driver.session(database=db) as session:
        start = time.perf_counter()
        for c in cis:
            session.execute_write(merge_ci, primary_key(c), props(c))
        ci_rate = len(cis) / (time.perf_counter() - start)
        ends = [{"key": primary_key(end), "class": end["class"]} for r in rels for end in (r["from"], r["to"])]
        driver.execute_query("UNWIND $rows AS row MERGE (n:NaiveCI {key: row.key}) SET n.class = row.class",
                             rows=ends, database_=db)  # the ends exist before the timed part, as in a real load
        start = time.perf_counter()
        for r in rels:
            rtype = SCHEMA.rel_type(r["type"]).name  # whitelisted: a type cannot be a parameter
            session.execute_write(merge_rel, rtype, primary_key(r["from"]), primary_key(r["to"]))
        rel_rate = len(rels) / (time.perf_counter() - start)
    with driver.session(database=db) as session:  # CALL IN TRANSACTIONS needs an implicit transaction
        session.run("MATCH (n:NaiveCI) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    driver.execute_query("DROP CONSTRAINT naive_key IF EXISTS", database_=db)
    return ci_rate, rel_rate


def bare_floor(store: Neo4jStore, docs: list[dict[str, Any]], batch: int, meter: CpuMeter) -> float:
    """Seconds to CREATE the same CIs and relationships with nothing but an id each, ``batch`` rows per
    transaction, ends found through a uniqueness index: what this server costs for the graph's bare
    shape, before any attribute, key, sighting, provenance or history. No loader can be faster."""
    driver, db = store._driver, store.database
    driver.execute_query("CREATE CONSTRAINT floor_key IF NOT EXISTS FOR (n:FloorCI) REQUIRE n.key IS UNIQUE",
                         database_=db)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=db)
    keys = [primary_key(c) for d in docs for c in d.get("cis") or []]
    ends = [[primary_key(r["from"]), primary_key(r["to"])] for d in docs for r in d.get("relationships") or []]
    start = time.perf_counter()
    with meter:
        for i in range(0, len(keys), batch):
            driver.execute_query("UNWIND $rows AS k CREATE (:FloorCI {key: k})", rows=keys[i:i + batch], database_=db)
        for i in range(0, len(ends), batch):
            driver.execute_query("UNWIND $rows AS e MATCH (a:FloorCI {key: e[0]}) MATCH (b:FloorCI {key: e[1]})"
                                 " CREATE (a)-[:FLOOR_REL]->(b)", rows=ends[i:i + batch], database_=db)
        seconds = time.perf_counter() - start
    with driver.session(database=db) as session:
        session.run("MATCH (n:FloorCI) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    driver.execute_query("DROP CONSTRAINT floor_key IF EXISTS", database_=db)
    return seconds


def closure_by_frontier(store: GraphStore, start: str) -> set[str]:
    """Who depends on ``start``: incoming upstream edges, one ``neighbors`` call per hop."""
    seen: set[str] = set()
    frontier = {start}
    while frontier:
        found = {r.src for r in store.neighbors(frontier, UPSTREAM, "in")}
        frontier = found - seen
        seen |= found
    return seen


def latencies(fn: Callable[[str], set[str]], starts: Iterable[str]) -> tuple[list[float], list[int]]:
    times, sizes = [], []
    for ci in starts:
        t = time.perf_counter()
        sizes.append(len(fn(ci)))
        times.append((time.perf_counter() - t) * 1000)
    return times, sizes


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cis", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--naive-sample", type=int, default=2000)
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="first loads timed (median reported)")
    ap.add_argument("--warmup", type=int, default=20_000,
                    help="CIs loaded and cleared first, so a fresh server's JIT warm-up is not timed")
    args = ap.parse_args()

    docs = list(synthetic_batches(args.cis, batch_size=args.batch))
    n_cis = sum(len(d.get("cis") or []) for d in docs)
    n_rels = sum(len(d.get("relationships") or []) for d in docs)
    rows: list[tuple[str, str, str, str, str, str]] = []
    with bench_neo4j() as (neo, server):
        if args.warmup:
            neo.clear()
            load(neo, list(synthetic_batches(args.warmup, seed=99, batch_size=args.batch)))
        firsts: list[float] = []
        meters: list[CpuMeter] = []
        for _ in range(args.repeat):  # a 2-core VM's timings vary by about 10% from one load to the next
            neo.clear()
            with CpuMeter(server.pid if server else None) as meter:
                seconds, first_events = load(neo, docs)
            firsts.append(seconds)
            meters.append(meter)
        middle = sorted(range(len(firsts)), key=firsts.__getitem__)[(len(firsts) - 1) // 2]
        first_s, first_cpu = firsts[middle], meters[middle]  # the median run (the lower one of an even count)
        stats = neo.stats()
        assert stats["cis"] == n_cis and stats["relationships"] == n_rels, stats
        again_s, again_events = load(neo, docs)
        neo.clear()
        serial_s, serial_events = load(neo, docs, pipelined=False)
        assert serial_events == first_events, (serial_events, first_events)
        ci_rate, rel_rate = naive_load(neo, docs, args.naive_sample)
        naive_s = n_cis / ci_rate + n_rels / rel_rate
        floor_cpu = CpuMeter(server.pid if server else None)
        floor_s = bare_floor(neo, docs, args.batch, floor_cpu)
        rows.append(("neo4j", f"batched first load (median of {len(firsts)})", f"{first_s:.1f}",
                     f"{n_cis / first_s:,.0f}",
                     f"{n_rels / first_s:,.0f}", f"{first_events:,}"))
        rows.append(("neo4j", "batched, no pipeline (ingest loop)", f"{serial_s:.1f}", f"{n_cis / serial_s:,.0f}",
                     f"{n_rels / serial_s:,.0f}", f"{serial_events:,}"))
        rows.append(("neo4j", "re-load, unchanged", f"{again_s:.1f}", f"{n_cis / again_s:,.0f}",
                     f"{n_rels / again_s:,.0f}", f"{again_events:,}"))
        rows.append(("neo4j", f"naive MERGE/tx (x{args.naive_sample} extrap.)", f"{naive_s:.1f}",
                     f"{ci_rate:,.0f}", f"{rel_rate:,.0f}", "-"))
        rows.append(("neo4j", "floor: bare CREATE, ids only", f"{floor_s:.1f}", f"{n_cis / floor_s:,.0f}",
                     f"{n_rels / floor_s:,.0f}", "-"))

        with tempfile.TemporaryDirectory() as tmp:
            lite = SqliteStore(Path(tmp) / "bench.db")
            lite_s, lite_events = load(lite, docs)
            rows.append(("sqlite", "batched first load", f"{lite_s:.1f}", f"{n_cis / lite_s:,.0f}",
                         f"{n_rels / lite_s:,.0f}", f"{lite_events:,}"))
            rng = random.Random(11)
            picks = rng.sample([c for d in docs for c in d.get("cis") or []], args.starts)
            keys = [primary_key(c) for c in picks]
            neo_ids = [neo.find_by_key(k) or "" for k in keys]
            lite_ids = [lite.find_by_key(k) or "" for k in keys]
            n_t, n_sizes = latencies(lambda ci: neo.reachable([ci], [], UPSTREAM), neo_ids)
            f_t, f_sizes = latencies(lambda ci: closure_by_frontier(neo, ci), neo_ids)
            s_t, s_sizes = latencies(lambda ci: closure_by_frontier(lite, ci), lite_ids)
            lite.close()
        assert n_sizes == f_sizes == s_sizes, "the three closures disagree"
        # Search for one server: by fqdn (an identity key: the CIKey index) and by hostname (not a key
        # on its own: every CI is scanned); both select the same CI.
        servers = [c for d in docs for c in d.get("cis") or [] if c.get("fqdn") and c.get("hostname")]
        searched = random.Random(5).sample(servers, min(args.starts, len(servers)))
        key_t, key_sizes = latencies(lambda f: {c.id for c in neo.search(SearchQuery(attrs={"fqdn": f})).items},
                             [c["fqdn"] for c in searched])
        scan_t, scan_sizes = latencies(lambda h: {c.id for c in neo.search(SearchQuery(attrs={"hostname": h})).items},
                              [c["hostname"] for c in searched])
        assert key_sizes == scan_sizes == [1] * len(searched), "the two searches disagree"

    print(f"estate: {n_cis:,} CIs, {n_rels:,} relationships, batches of {args.batch}")
    print(f"{'store':<7} {'phase':<34} {'seconds':>8} {'CIs/s':>9} {'rels/s':>9} {'events':>9}")
    for r in rows:
        print(f"{r[0]:<7} {r[1]:<34} {r[2]:>8} {r[3]:>9} {r[4]:>9} {r[5]:>9}")
    print(f"batched first loads: {', '.join(f'{x:.1f}' for x in firsts)} s")
    print(f"pipeline: {serial_s / first_s:.2f}x the one-batch-at-a-time loop")
    print(f"batched vs naive: {naive_s / first_s:.1f}x faster on Neo4j (naive extrapolated from "
          f"{args.naive_sample} CIs + {args.naive_sample} relationships); batched takes "
          f"{first_s / floor_s:.1f}x the bare floor (warm-up: {args.warmup:,} CIs loaded and cleared first)")
    cores = os.cpu_count() or 1
    print(f"\nCPU per CI (with its {n_rels / n_cis:.0f} relationships and {first_events / n_cis:.0f} history events),"
          f" {cores} cores:")
    print(f"  median pipelined load: {first_cpu.per_item(n_cis)}"
          + (f" -> at most {cores * n_cis / first_cpu.total():,.0f} CIs/s on {cores} cores however the same work"
             " is spread" if first_cpu.server is not None else ""))
    print(f"  floor (bare CREATE):   {floor_cpu.per_item(n_cis)}"
          + (f" -> at most {cores * n_cis / floor_cpu.total():,.0f} CIs/s" if floor_cpu.server is not None else ""))
    print(f"  10,000 CIs/s on {cores} cores leaves {cores / 10_000 * 1e6:,.0f} µs of CPU per CI for all processes")
    print(f"\nblast radius (who depends on a CI; closure over incoming {len(UPSTREAM)} to_source types), "
          f"{args.starts} random CIs, mean closure {statistics.mean(n_sizes):.0f}, max {max(n_sizes)}")
    print(f"{'method':<42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, t in (("neo4j reachable() (one query)", n_t), ("neo4j neighbors() frontier", f_t),
                    ("sqlite neighbors() frontier", s_t)):
        print(f"{name:<42} {pct(t, 50):>8.1f} {pct(t, 95):>8.1f} {max(t):>8.1f}")
    print(f"\nsearch for one server, {len(searched)} random servers, on Neo4j")
    print(f"{'filter':<42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, t in (("fqdn=... (identity key: CIKey index)", key_t), ("hostname=... (no key: scans every CI)", scan_t)):
        print(f"{name:<42} {pct(t, 50):>8.1f} {pct(t, 95):>8.1f} {max(t):>8.1f}")


if __name__ == "__main__":
    main()
