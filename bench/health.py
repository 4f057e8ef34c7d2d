"""``cmdb health`` on a large estate: how long the report takes, which store question costs what,
and what the one-query-per-CI way would cost instead.

The estate is ``bench.synthetic`` (100,000 CIs and about 300,000 relationships by default) plus 1% of
defects of each correctness kind (``defects``), loaded
with ``ingest_many`` into a SQLite file (kept with ``--db PATH`` for re-runs) and, with ``--neo4j``,
into a Neo4j server (``CMDB_TEST_NEO4J_URI`` / ``_USER`` / ``_PASSWORD``, or one started here with
scripts/neo4j_server.py). Then, per store, side by side:

* ``build_report``: the whole report (median of ``--repeat``), and each store question in it;
* ``cmdb health --json`` as a user runs it (SQLite: a new process, so start-up and the snapshot
  are included);
* per CI: the way a report is often first written, one ``get_ci`` and one ``relationships`` call per
  CI, timed on ``--sample`` CIs and extrapolated to the estate (the ratio is what the aggregate
  queries save).

    python bench/health.py [--cis 100000] [--repeat 3] [--db /tmp/health-100k.db] [--neo4j] [--sample 2000]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.synthetic import synthetic_batches  # noqa: E402
from cmdb.batch import Batch  # noqa: E402
from cmdb.health.config import HealthConfig, checked_attributes, concrete  # noqa: E402
from cmdb.health.report import build_report  # noqa: E402
from cmdb.ingest import ingest  # noqa: E402
from cmdb.ingest_pipeline import ingest_many  # noqa: E402
from cmdb.model import default_schema  # noqa: E402
from cmdb.store.base import GraphStore, SearchQuery, iso  # noqa: E402
from cmdb.store.sqlite import SqliteStore  # noqa: E402

SCHEMA = default_schema()
CONFIG = HealthConfig.load(SCHEMA)


def defects(n: int) -> dict[str, Any]:
    """A batch adding defects of every correctness kind, 1% of the estate each, seen 40 days ago:
    orphan applications, devices sharing a hostname (idle and unowned too), services without an
    owner or support team, persons sharing a name."""
    k = max(2, n // 100)
    cis: list[dict[str, Any]] = []
    for i in range(k):
        ip = f"10.{200 + i // 65536}.{i // 256 % 256}.{i % 256}"
        cis += [{"class": "Application", "name": f"orphan-app-{i}", "version": "1", "environment": "test"},
                {"class": "VirtualMachine", "hostname": f"dup-{i}", "ip_addresses": [ip], "os": "Linux"},
                {"class": "Server", "hostname": f"DUP-{i}", "ip_addresses": [ip.replace("10.", "11.", 1)],
                 "os": "Linux", "vendor": "Dell", "model": "R650"},
                {"class": "Person", "name": f"Dup Person {i // 2}", "email": f"dup{i}@example.com"}]
    cis += [{"class": "Service", "name": f"unowned-svc-{i}", "service_type": "technical", "tier": 3}
            for i in range(k // 10)]
    return {"source": "manual", "scope": "defects", "complete": True, "cis": cis}


def load(store: GraphStore, n: int) -> float:
    t = time.perf_counter()
    for _ in ingest_many(store, (Batch.from_dict(d) for d in synthetic_batches(n))):
        pass
    ingest(store, Batch.from_dict(defects(n)), now=datetime.now(UTC) - timedelta(days=40))
    return time.perf_counter() - t


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def questions(store: GraphStore) -> dict[str, float]:
    """Each store question of one report, timed alone (the same arguments ``build_report`` gives)."""
    counts = store.class_status_counts()
    classes = sorted(c for c, by in counts.items() if c in SCHEMA.classes and any(s != "retired" for s in by))
    wanted = {c: [a for part in checked_attributes(SCHEMA, CONFIG, c) for a in part] for c in classes}
    hosts = [c for c in concrete(SCHEMA, CONFIG.hostname_classes) if c in classes]
    out = {
        "class_status_counts": timed(store.class_status_counts),
        "attribute_gaps": timed(lambda: store.attribute_gaps(wanted)),
        "duplicate_groups (hostname)": timed(lambda: store.duplicate_groups(hosts, "hostname")),
        "duplicate_groups (name)": timed(lambda: store.duplicate_groups(classes)),
        "conflicts": timed(store.conflicts),
        "source_runs": timed(store.source_runs),
        "ci_freshness": timed(lambda: store.ci_freshness(iso_days_ago(CONFIG.stale_after_days))),
    }
    for rule in CONFIG.rules:
        targets = [c for c in concrete(SCHEMA, rule.classes) if c in classes]
        out[f"cis_lacking ({rule.id})"] = timed(functools.partial(store.cis_lacking, targets, rule.lacks))
    return out


def iso_days_ago(days: int) -> str:
    return iso(datetime.now(UTC) - timedelta(days=days))


def per_ci(store: GraphStore, sample: int, total: int) -> float:
    """Seconds for the one-call-per-CI way over the whole estate, extrapolated from ``sample`` CIs."""
    ids = [c.id for c in store.search(SearchQuery(limit=sample)).items]
    t = time.perf_counter()
    for i in ids:
        store.get_ci(i)
        store.relationships(i)
    return (time.perf_counter() - t) / max(1, len(ids)) * total


def measure(name: str, store: GraphStore, args: argparse.Namespace, total: int) -> dict[str, Any]:
    build_report(store, SCHEMA, CONFIG)  # warm caches (a first report reads the file or warms the server)
    runs = [timed(lambda: build_report(store, SCHEMA, CONFIG)) for _ in range(args.repeat)]
    report = build_report(store, SCHEMA, CONFIG)
    row: dict[str, Any] = {"store": name, "report_s": statistics.median(runs), "runs": runs,
                           "findings": len(report.findings), "overall": report.overall,
                           "questions": questions(store), "per_ci_s": per_ci(store, args.sample, total)}
    if isinstance(store, SqliteStore):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "product.cli", "--store", store.url, "health", "--json"],
                              capture_output=True, text=True, cwd=REPO, check=True)
        row["cli_s"] = time.perf_counter() - t
        row["cli_findings"] = json.loads(proc.stdout)["total"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cis", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=2000, help="CIs timed one by one for the per-CI estimate")
    ap.add_argument("--db", type=Path, default=None, help="SQLite file to keep the estate in (re-used if present)")
    ap.add_argument("--neo4j", action="store_true", help="also on Neo4j")
    args = ap.parse_args()

    db = args.db or Path(f"/tmp/cmdb-health-bench-{args.cis}.db")
    fresh = not db.exists()
    sqlite = SqliteStore(db)
    if fresh:
        print(f"loading {args.cis} CIs into {db}: {load(sqlite, args.cis):.1f} s", flush=True)
    total = sum(sqlite.class_status_counts().get(c, {}).get("active", 0) for c in SCHEMA.classes)
    rels = sqlite.stats()["relationships"]
    rows = [measure("sqlite", sqlite, args, total)]
    sqlite.close()
    if args.neo4j:
        from bench.neo4j_bench_store import bench_neo4j

        with bench_neo4j() as (neo, _server):
            if neo.stats()["cis"] != total:
                neo.clear()
                print(f"loading {args.cis} CIs into Neo4j: {load(neo, args.cis):.1f} s", flush=True)
            rows.append(measure("neo4j", neo, args, total))

    print(f"\ncmdb health on {total} CIs and {rels} relationships (median of {args.repeat} reports)\n")
    names = [r["store"] for r in rows]
    print(f"{'':<40}" + "".join(f"{n:>12}" for n in names))
    print(f"{'build_report (s)':<40}" + "".join(f"{r['report_s']:>12.2f}" for r in rows))
    for q in rows[0]["questions"]:
        print(f"{'  ' + q:<40}" + "".join(f"{r['questions'][q]:>12.3f}" for r in rows))
    if "cli_s" in rows[0]:
        print(f"{'cmdb health --json, whole process (s)':<40}{rows[0]['cli_s']:>12.2f}")
    print(f"{'per-CI way, extrapolated (s)':<40}" + "".join(f"{r['per_ci_s']:>12.1f}" for r in rows))
    print(f"{'  per-CI / build_report':<40}" + "".join(f"{r['per_ci_s'] / r['report_s']:>11.0f}x" for r in rows))
    print(f"{'findings':<40}" + "".join(f"{r['findings']:>12}" for r in rows))
    print(f"{'overall score':<40}" + "".join(f"{r['overall']:>12.1f}" for r in rows))
    if len(rows) == 2:
        print(f"{'neo4j / sqlite (build_report)':<40}{rows[1]['report_s'] / rows[0]['report_s']:>24.2f}x")


if __name__ == "__main__":
    main()
