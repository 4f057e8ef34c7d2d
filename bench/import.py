"""Mapped CSV import against ``cmdb load`` of the same data: rows/s and peak RSS, side by side.

Each row of the CSV is one Server and one relationship (OWNED_BY a Person, 1,000 distinct owners).
The same rows are also written as native batch files of ``--batch`` rows (the same chunks the
import writes) and loaded with ``cmdb load``. Every run is its own ``cmdb`` process on a fresh
embedded (SQLite) store; peak RSS is that process's (``wait4``). The re-import must write no
history event. ``--one-batch N`` also imports the first N rows as one transaction (the
alternative to the two-pass design) to show what atomicity-by-one-transaction costs in memory.

    python bench/import.py [--rows 1000000] [--batch 5000] [--one-batch 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CMDB = [sys.executable, "-m", "product.cli"]
OWNERS = 1000

MAPPING = """\
name: bench
class: Server
identity: [serial, hostname]
batch_size: {batch}
columns:
  hostname: hostname
  serial: serial_number
  ip: {{attribute: ip_addresses, transforms: [{{split: ";"}}]}}
  env: environment
relationships:
  - column: owner
    type: OWNED_BY
    target: {{class: Person, attribute: email}}
"""


def row(i: int) -> tuple[str, str, str, str, str]:
    return (f"host-{i:07d}", f"SN{i:08d}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            ("production", "staging", "test")[i % 3], f"owner{i % OWNERS}@example.com")


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as fh:
        fh.write("hostname,serial,ip,env,owner\n")
        for i in range(rows):
            fh.write(",".join(row(i)) + "\n")


def write_batches(directory: Path, rows: int, batch: int) -> list[Path]:
    files = []
    for n, start in enumerate(range(0, rows, batch)):
        cis: list[dict[str, Any]] = []
        rels: list[dict[str, Any]] = []
        owners: set[str] = set()
        for i in range(start, min(rows, start + batch)):
            host, serial, ip, env, owner = row(i)
            cis.append({"ref": f"r{i}", "class": "Server", "hostname": host, "serial_number": serial,
                        "ip_addresses": [ip], "environment": env})
            if owner not in owners:
                owners.add(owner)
                cis.append({"ref": owner, "class": "Person", "email": owner})
            rels.append({"type": "OWNED_BY", "from": f"r{i}", "to": owner})
        path = directory / f"batch-{n:05d}.json"
        path.write_text(json.dumps({"source": "import:bench", "scope": "bench.csv", "cis": cis,
                                    "relationships": rels}))
        files.append(path)
    return files


def run_measured(args: list[str], store: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, stdout) of one ``cmdb`` process (its own rusage, by wait4)."""
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{store}", "COLUMNS": "200"}
    out_path = store.with_suffix(".out")
    start = time.perf_counter()
    with out_path.open("w") as out, open(os.devnull, "w") as devnull:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "product.cli", *args], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, devnull.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    text = out_path.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"cmdb {' '.join(args[:3])} failed (exit {os.waitstatus_to_exitcode(status)}); "
                         f"rerun it by hand to see why")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--one-batch", type=int, default=0, help="also import this many rows as one transaction")
    args = ap.parse_args()
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="cmdb-bench-import-") as tmp:
        d = Path(tmp)
        csv_path = d / "bench.csv"
        t0 = time.perf_counter()
        write_csv(csv_path, args.rows)
        files = write_batches(d, args.rows, args.batch)
        (d / "map.yaml").write_text(MAPPING.format(batch=args.batch))
        print(f"{args.rows:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB CSV, {len(files)} batch files of "
              f"{args.batch} rows) generated in {time.perf_counter() - t0:.0f}s; Python {sys.version.split()[0]}")

        results: list[tuple[str, int, float, float, float, str]] = []
        secs, cpu, rss, out = run_measured(["load", "--json", *map(str, files)], d / "load.db")
        events = sum(r["events"] for r in json.loads(out))
        results.append(("cmdb load (batches)", args.rows, secs, cpu, rss, f"{events:,} events"))
        imp = ["import", str(csv_path), "-m", str(d / "map.yaml"), "--json"]
        secs, cpu, rss, out = run_measured(imp, d / "imp.db")
        results.append(("cmdb import (first)", args.rows, secs, cpu, rss, f"{json.loads(out)['events']:,} events"))
        secs, cpu, rss, out = run_measured(["load", "--json", *map(str, files)], d / "load.db")
        results.append(("cmdb load (again)", args.rows, secs, cpu, rss,
                        f"{sum(r['events'] for r in json.loads(out)):,} events"))
        secs, cpu, rss, out = run_measured(imp, d / "imp.db")
        re_events = json.loads(out)["events"]
        results.append(("cmdb import (again)", args.rows, secs, cpu, rss, f"{re_events:,} events"))
        if args.one_batch:
            n = args.one_batch
            small = d / "one.csv"
            write_csv(small, n)
            (d / "one.yaml").write_text(MAPPING.format(batch=n))
            secs, cpu, rss, out = run_measured(["import", str(small), "-m", str(d / "one.yaml"), "--json"],
                                               d / "one.db")
            results.append((f"one transaction of {n:,} rows", n, secs, cpu, rss, ""))
            secs, cpu, rss, out = run_measured(["import", str(small), "-m", str(d / "map.yaml"), "--json"],
                                               d / "one2.db")
            results.append((f"{n:,} rows in batches of {args.batch}", n, secs, cpu, rss, ""))

        # Wall time on a shared machine includes waiting for the CPU; CPU time is what the work costs.
        base_wall, base_cpu = args.rows / results[0][2], args.rows / results[0][3]
        print(f"{'run':32} {'wall s':>8} {'rows/s':>8} {'vs load':>8} {'CPU s':>8} {'rows/CPU-s':>10} "
              f"{'vs load':>8} {'peak RSS MB':>12}")
        for name, rows, secs, cpu, rss, note in results:
            print(f"{name:32} {secs:8.1f} {rows / secs:8,.0f} {rows / secs / base_wall:7.2f}x {cpu:8.1f} "
                  f"{rows / cpu:10,.0f} {rows / cpu / base_cpu:7.2f}x {rss:12.0f}  {note}")
        if re_events:
            raise SystemExit(f"the re-import wrote {re_events} history events; it must write none")


if __name__ == "__main__":
    main()
