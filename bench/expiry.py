"""One expiry cycle over a synthetic estate of 1M CIs (50k certificates and licences), embedded store.

Prints, side by side in one run:

* the expiry range query through the store's index (``expiring_cis``) against the same query with
  the index withheld (SQLite's ``NOT INDEXED``: a scan of every CI), and their ratio;
* the first cycle (``impact.expiry_tasks.run_expiry_cycle``): tasks raised, seconds, tasks per second;
* an idle second cycle at the same clock (nothing to do; the acceptance bound is under 2 s);
  wall and CPU seconds, since on a shared machine the wall time includes waiting for a CPU;
* a cycle a day later (escalations and nothing new), for scale;
* the licence compliance check (``impact.licences.check_compliance``), first and idle (the
  "escalated" column counts updated tasks there).

The estate (the synthetic estate of ``bench.synthetic`` plus certificates used by applications and
licences consumed by VMs, all through ``cmdb.ingest``) is built once into
``~/.cache/cmdb-bench/expiry-<n>.db`` (about 10 minutes for 1M CIs) and copied for every run, so runs
start from the same store with no tasks::

    python bench/expiry.py [--cis 1000000] [--certs 40000] [--licences 10000] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import synthetic_batches, synthetic_counts
from cmdb.batch import Batch
from cmdb.ingest_pipeline import ingest_many
from cmdb.store.sqlite import SqliteStore
from cmdb.store.tasks import EXPIRY_ATTRS, TaskQuery, expiry_bound

_T = TypeVar("_T")
NOW = datetime(2027, 1, 4, 6, 0, tzinfo=UTC)  # the injected clock of every cycle
BUILT_AT = datetime(2027, 1, 1, tzinfo=UTC)
CACHE = Path.home() / ".cache" / "cmdb-bench"
BATCH = 5000
SPREAD_DAYS = (-10, 1460)  # expiries spread evenly from 10 days ago to 4 years ahead


def _expiry_batches(n_certs: int, n_licences: int, counts: dict[str, int], seed: int = 11) -> Iterator[dict[str, Any]]:
    """Certificates (each used by an application, 60% owned by a person) and licences (two VMs each)."""
    rng = random.Random(f"expiry:{seed}")
    apps, persons, vms, teams = counts["Application"], counts["Person"], counts["VirtualMachine"], counts["Team"]

    def when(i: int) -> datetime:
        lo, hi = SPREAD_DAYS
        return BUILT_AT + timedelta(days=lo + (hi - lo) * ((i * 7919) % 100_000) / 100_000, hours=rng.randint(0, 23))

    cis: list[dict[str, Any]] = []
    rels: list[dict[str, Any]] = []
    for i in range(n_certs):
        ref = f"cert-{i:06d}"
        cis.append({"ref": ref, "class": "Certificate", "subject": f"CN=svc-{i:06d}.syn.example",
                    "issuer": "CN=Synthetic CA", "serial": f"{i:08x}", "not_after": when(i).isoformat()})
        rels.append({"type": "USES_CERTIFICATE", "from": {"class": "Application", "name": f"app-{i % apps:07d}"},
                     "to": ref})
        if i % 5 < 3:
            rels.append({"type": "OWNED_BY", "from": ref,
                         "to": {"class": "Person", "email": f"p-{(i * 31) % persons:07d}@example.com"}})
    for j in range(n_licences):
        ref = f"lic-{j:06d}"
        cis.append({"ref": ref, "class": "License", "name": f"lic-{j:06d}", "product": f"Product {j % 50}",
                    "entitlements": rng.randint(1, 4), "expires": when(j * 3 + 1).date().isoformat()})
        for k in range(2):
            rels.append({"type": "LICENSED_BY", "from": {"class": "VirtualMachine",
                                                          "fqdn": f"vm-{(j * 2 + k) % vms:07d}.syn.example"},
                         "to": ref})
        if j % 2 == 0:
            rels.append({"type": "OWNED_BY", "from": ref, "to": {"class": "Team", "name": f"team-{j % teams:05d}"}})
    # CIs and the relationships that name them by ref must share a batch.
    per = max(1, BATCH // 3)
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for r in rels:
        by_ref.setdefault(r["to"] if isinstance(r["to"], str) else r["from"], []).append(r)
    for start in range(0, len(cis), per):
        chunk = cis[start:start + per]
        yield {"source": "import", "scope": "expiry", "cis": chunk,
               "relationships": [r for c in chunk for r in by_ref.get(c["ref"], [])]}


def build(path: Path, n_cis: int, n_certs: int, n_licences: int) -> None:
    base = n_cis - n_certs - n_licences
    counts = synthetic_counts(base)
    tmp = path.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    store = SqliteStore(tmp)
    start = time.perf_counter()
    docs = chain(synthetic_batches(base, rels_per_ci=1.5, batch_size=BATCH),
                 _expiry_batches(n_certs, n_licences, counts))
    done = 0
    for res in ingest_many(store, (Batch.from_dict(d) for d in docs), now=BUILT_AT):
        done += res.created
        if done and done % 100_000 < BATCH:
            print(f"  built {done} CIs in {time.perf_counter() - start:.0f} s", flush=True)
    stats = store.stats()
    store.close()
    tmp.rename(path)
    print(f"built {stats['cis']} CIs, {stats['relationships']} relationships in {time.perf_counter() - start:.0f} s"
          f" -> {path}", flush=True)


def scan_baseline(path: Path, until: datetime) -> tuple[float, int]:
    """The range query of ``expiring_cis`` with its index withheld: every CI row is read."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    start = time.perf_counter()
    n = 0
    for cls, attr in EXPIRY_ATTRS.items():
        expr = f"json_extract(attrs, '$.{attr}')"
        n += len(db.execute(f"SELECT id, class, name, status, {expr} FROM ci NOT INDEXED WHERE class = ?"
                            f" AND {expr} <= ? AND {expr} IS NOT NULL AND status != 'retired'",
                            (cls, expiry_bound(attr, until))).fetchall())
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed, n


def timed(work: Callable[[], _T]) -> tuple[_T, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cis", type=int, default=1_000_000)
    ap.add_argument("--certs", type=int, default=40_000)
    ap.add_argument("--licences", type=int, default=10_000)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"expiry-{args.cis}-{args.certs}-{args.licences}.db"
    if args.rebuild or not cached.exists():
        build(cached, args.cis, args.certs, args.licences)
    if args.build_only:
        return

    from impact.automation_config import AutomationConfig
    from impact.expiry_tasks import run_expiry_cycle
    from impact.licences import check_compliance

    config = AutomationConfig()
    horizon = NOW + timedelta(days=config.tasks.horizon_days())
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        path = Path(tmp) / "run.db"
        shutil.copyfile(cached, path)
        store = SqliteStore(path)
        cis = store.stats()["cis"]

        start = time.perf_counter()
        found = store.expiring_cis(horizon)
        indexed_s = time.perf_counter() - start
        scan_s, scanned = scan_baseline(path, horizon)
        assert scanned == len(found), (scanned, len(found))

        first, first_s, first_cpu = timed(lambda: run_expiry_cycle(store, NOW, config))
        idle, idle_s, idle_cpu = timed(lambda: run_expiry_cycle(store, NOW, config))
        next_day, next_s, next_cpu = timed(lambda: run_expiry_cycle(store, NOW + timedelta(days=1), config))
        lic_first, lic_first_s, lic_first_cpu = timed(lambda: check_compliance(store, NOW, config))
        lic_idle, lic_idle_s, lic_idle_cpu = timed(lambda: check_compliance(store, NOW, config))
        tasks = len(store.list_tasks(TaskQuery(limit=1_000_000)))
        store.close()

    print(f"estate: {cis} CIs ({args.certs} certificates, {args.licences} licences); clock {NOW.isoformat()};"
          f" horizon {config.tasks.horizon_days()} days")
    print(f"{'expiry query':<28} {'rows':>7} {'indexed s':>10} {'full scan s':>12} {'scan/indexed':>13}")
    print(f"{'expiring_cis(horizon)':<28} {len(found):>7} {indexed_s:>10.3f} {scan_s:>12.3f}"
          f" {scan_s / indexed_s:>12.0f}x")
    print(f"{'cycle':<28} {'raised':>7} {'escalated':>10} {'resolved':>9} {'unchanged':>10} {'wall s':>8}"
          f" {'CPU s':>7} {'tasks/s':>8}")
    for label, rep, secs, cpu in (("first", first, first_s, first_cpu), ("idle (same clock)", idle, idle_s, idle_cpu),
                                  ("next day", next_day, next_s, next_cpu)):
        rate = f"{rep.raised / secs:>8.0f}" if rep.raised else f"{'-':>8}"
        print(f"{label:<28} {rep.raised:>7} {rep.escalated:>10} {rep.resolved:>9} {rep.unchanged:>10}"
              f" {secs:>8.2f} {cpu:>7.2f} {rate}")
    for label, lic, secs, cpu in (("licence compliance, first", lic_first, lic_first_s, lic_first_cpu),
                                  ("licence compliance, idle", lic_idle, lic_idle_s, lic_idle_cpu)):
        rate = f"{lic.raised / secs:>8.0f}" if lic.raised else f"{'-':>8}"
        print(f"{label:<28} {lic.raised:>7} {lic.updated:>10} {lic.resolved:>9} {lic.unchanged:>10}"
              f" {secs:>8.2f} {cpu:>7.2f} {rate}")
    load = os.getloadavg()[0]
    print(f"tasks in the store: {tasks}; idle cycle {'under' if idle_s < 2 else 'OVER'} the 2 s bound"
          f" (load average {load:.1f} on {os.cpu_count()} CPUs: wall time includes waiting for a CPU)")


if __name__ == "__main__":
    main()
