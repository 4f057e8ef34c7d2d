"""Reading a large YAML batch: PyYAML's pure Python loader (what ``cmdb load`` used) beside libyaml's C
loader (what it uses now), and what the safety walk (``cmdb.batch_input.check_limits``) adds.

Issue 17 found a 50 MB YAML file took 121 s and 3.7 GB with the pure loader. This writes a batch of
``--cis`` servers with a relationship each (about 230 bytes a CI: 50 MB at ``--cis 220000``), then
times, in one run: parsing with ``yaml.SafeLoader``, parsing with ``yaml.CSafeLoader``, the limits
walk over the parsed document, and ``Batch.from_file`` end to end (C loader, walk, batch objects).
With ``--memory``, each step's traced allocation peak (tracemalloc) too.

    python bench/batch_input.py [--cis 40000] [--skip-pure] [--memory]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cmdb.batch import Batch
from cmdb.batch_input import check_limits


def write_batch(path: Path, n: int) -> None:
    with path.open("w") as f:
        f.write("source: import:bench\nscope: bench\ncomplete: false\ncis:\n")
        for i in range(n):
            f.write(f"  - {{ref: s{i}, class: Server, hostname: srv-{i:06d}, serial_number: SN-{i:08d}, "
                    f"os: Debian 12, cpu_count: 8, ip_addresses: [10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}], "
                    f"environment: production, description: a server of the benchmark estate}}\n")
        f.write("relationships:\n")
        for i in range(1, n):
            f.write(f"  - {{type: CONNECTED_TO, from: s{i}, to: s{i - 1}, attributes: {{port: eth0}}}}\n")


MEMORY = False


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds (without tracing: tracemalloc slows allocation-heavy code several times) and, with
    --memory, the traced peak in MB from a second, traced call."""
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    if not MEMORY:
        return seconds, float("nan"), out
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cis", type=int, default=40_000)
    ap.add_argument("--skip-pure", action="store_true", help="Leave out the (slow) pure Python loader.")
    ap.add_argument("--memory", action="store_true", help="Also trace each step's peak memory (slow).")
    args = ap.parse_args()
    global MEMORY
    MEMORY = args.memory
    if not yaml.__with_libyaml__:
        raise SystemExit("this PyYAML has no libyaml: apt-get install libyaml-dev, then reinstall PyYAML")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.yaml"
        write_batch(path, args.cis)
        text = path.read_text()
        print(f"{args.cis:,} CIs and {args.cis - 1:,} relationships: {path.stat().st_size / 2**20:.1f} MB of YAML")
        rows = []
        if not args.skip_pure:
            rows.append(("yaml.SafeLoader (before)", *measure(lambda: yaml.load(text, Loader=yaml.SafeLoader))))
        c_s, c_mb, doc = measure(lambda: yaml.load(text, Loader=yaml.CSafeLoader))
        rows.append(("yaml.CSafeLoader (now)", c_s, c_mb, doc))
        rows.append(("check_limits walk", *measure(lambda: check_limits(doc, "bench"))))
        rows.append(("Batch.from_file (all of it)", *measure(lambda: Batch.from_file(path))))
        base = rows[0][1]
        print(f"{'step':32} {'seconds':>9} {'peak MB':>9} {'vs first':>9}")
        for name, seconds, mb, _ in rows:
            print(f"{name:32} {seconds:9.2f} {mb:9.0f} {seconds / base:8.2f}x")


if __name__ == "__main__":
    main()
