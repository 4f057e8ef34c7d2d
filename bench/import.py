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
CMDB = [sys.executable, "-m", "cmdb.cli"]
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


def run_measured(args: list[str], store: Path) -> tuple[float, float, str]:
    """Like ``run`` but with the child's own peak RSS (Popen reaps it, so use wait4 directly)."""
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{store}", "COLUMNS": "200"}
    out_path = store.with_suffix(".out")
    start = time.perf_counter()
    with out_path.open("w") as out, open(os.devnull, "w") as devnull:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "cmdb.cli", *args], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, devnull.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    text = out_path.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"cmdb {' '.join(args[:3])} failed (exit {os.waitstatus_to_exitcode(status)}); "
                         f"rerun it by hand to see why")
    return elapsed, usage.ru_maxrss / 1024, text


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

        results: list[tuple[str, float, float, str]] = []
        secs, rss, out = run_measured(["load", "--json", *map(str, files)], d / "load.db")
        events = sum(r["events"] for r in json.loads(out))
        results.append(("cmdb load (batches)", secs, rss, f"{events:,} events"))
        secs, rss, out = run_measured(["import", str(csv_path), "-m", str(d / "map.yaml"), "--json"], d / "imp.db")
        results.append(("cmdb import (first)", secs, rss, f"{json.loads(out)['events']:,} events"))
        secs, rss, out = run_measured(["import", str(csv_path), "-m", str(d / "map.yaml"), "--json"], d / "imp.db")
        re_events = json.loads(out)["events"]
        results.append(("cmdb import (again)", secs, rss, f"{re_events:,} events"))
        if args.one_batch:
            n = args.one_batch
            small = d / "one.csv"
            write_csv(small, n)
            (d / "one.yaml").write_text(MAPPING.format(batch=n))
            secs, rss, out = run_measured(["import", str(small), "-m", str(d / "one.yaml"), "--json"], d / "one.db")
            results.append((f"one transaction, {n:,} rows", secs * args.rows / n, rss, "(time scaled to all rows)"))
            secs, rss, out = run_measured(["import", str(small), "-m", str(d / "map.yaml"), "--json"], d / "one2.db")
            results.append((f"batches of {args.batch}, {n:,} rows", secs * args.rows / n, rss,
                            "(time scaled to all rows)"))

        base = results[0][1]
        print(f"{'run':32} {'seconds':>9} {'rows/s':>9} {'vs load':>8} {'peak RSS MB':>12}")
        for name, secs, rss, note in results:
            print(f"{name:32} {secs:9.1f} {args.rows / secs:9,.0f} {base / secs:8.2f}x {rss:12.0f}  {note}")
        if re_events:
            raise SystemExit(f"the re-import wrote {re_events} history events; it must write none")


if __name__ == "__main__":
    main()
