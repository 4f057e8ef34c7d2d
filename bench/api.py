"""HTTP API throughput and latency under load, beside a bare FastAPI hello endpoint in the same run.

Servers run as their own processes (``cmdb serve`` and uvicorn with ``bench/api_hello.py``, with 1
and 2 workers); the load comes from Debian's ``wrk`` (another process, 32 connections, a fixed
duration) and reports requests/s and the p50/p99 latency of:

* ``GET /hello`` on the bare app (the baseline) and ``GET /api/v1/cis/{id}`` (target: >= 0.4x hello);
* ``POST /api/v1/impact/incident`` failing a core switch, on the sample estate (target p99 < 100 ms)
  and on a 100k-CI synthetic estate (target p99 < 250 ms): as asked (answered from the answer cache
  after the first), and with ``Cache-Control: no-cache`` (computed on the warm index every time) by
  32 clients (each waits for the computations queued before its own: throughput) and by 1 client
  (one computation's own latency); and as asked again while a collector posts a 10-CI batch each second
  (every write moves the store's write counter: the index is rebuilt and the answer computed again);
* ``POST /api/v1/batches`` of 1,000 new CIs each, 32 clients at once, against ``cmdb load`` of the same
  batch files into an empty store (target: >= 0.8x its CIs/s).

    apt-get install wrk
    python bench/api.py [--duration 10] [--workers 1,2] [--sizes sample,100000] [--batches 12]

The 100k estate is built once (about a minute) and kept in ``~/.cache/cmdb-bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.auth import load_token_key  # noqa: E402
from bench.synthetic import synthetic_batches  # noqa: E402
from cmdb.batch import Batch  # noqa: E402
from cmdb.history import resolve_ci  # noqa: E402
from cmdb.ingest import ingest  # noqa: E402
from cmdb.ingest_pipeline import ingest_many  # noqa: E402
from cmdb.model import default_schema  # noqa: E402
from cmdb.store.sqlite import SqliteStore  # noqa: E402
from cmdb.tokens import create_token  # noqa: E402

SAMPLE = REPO / "cmdb" / "sample" / "estate.yaml"
CACHE = Path.home() / ".cache" / "cmdb-bench"
LOOPBACK = "127.0.0.1"
CMDB = [sys.executable, "-m", "product.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:g} s")


@contextmanager
def server(cmd: list[str], ready_path: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in cmd]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://{LOOPBACK}:{port}"
    SERVERS[url] = proc.pid
    try:
        wait_ready(url + ready_path, proc)
        yield url
    finally:
        SERVERS.pop(url, None)
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SERVERS: dict[str, int] = {}  # base URL -> pid of the server process


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


def hello_server(workers: int) -> Any:
    return server([sys.executable, "-m", "uvicorn", "api_hello:app", "--app-dir", str(REPO / "bench"), "--host",
                   LOOPBACK, "--port", "{port}", "--workers", str(workers), "--log-level", "warning"], "/hello")


def cmdb_server(store_url: str, workers: int) -> Any:
    return server([*CMDB, "--store", store_url, "serve", "--host", LOOPBACK, "--port", "{port}", "--workers",
                   str(workers), "--log-level", "warning"], "/readyz")


_LAT = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(url: str, token: str | None, duration: int, connections: int, body: Any = None,
        headers: dict[str, str] | None = None) -> dict[str, float]:
    """Run wrk; returns requests/s, p50 and p99 in ms and the count of non-2xx answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if body is not None:
            script.write(f"wrk.method = 'POST'\nwrk.body = {json.dumps(json.dumps(body))}\n"
                         "wrk.headers['Content-Type'] = 'application/json'\n")
        if token:
            script.write(f"wrk.headers['Authorization'] = 'Bearer {token}'\n")
        for name, value in (headers or {}).items():
            script.write(f"wrk.headers['{name}'] = '{value}'\n")
    base = next((b for b in SERVERS if url.startswith(b)), None)
    cpu0 = tree_cpu(SERVERS[base]) if base else float("nan")
    try:
        out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--timeout",
                              "30s", "--latency", "-s", script.name,
                              url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {q: float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u] for q, v, u in _LAT.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    done = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu = (tree_cpu(SERVERS[base]) - cpu0) if base else float("nan")
    return {"rps": rps, "p50": lat.get("50", float("nan")), "p99": lat.get("99", float("nan")),
            "cpu_ms": cpu * 1000 / done if done else float("nan"),
            "errors": float(bad.group(1)) if bad else 0.0}


def wait_for_index(url: str, timeout: float = 900) -> None:
    """Until the server's warm impact index is built (it competes for the CPU while it builds)."""
    deadline = time.monotonic() + timeout
    ready = 0  # in a row: each worker builds its own index, and any of them may answer
    while time.monotonic() < deadline and ready < 8:
        built = httpx.get(f"{url}/readyz", timeout=10).json().get("impact_index_writes") is not None
        ready = ready + 1 if built else 0
        time.sleep(0.1 if built else 0.5)
    if ready >= 8:
        return
    raise SystemExit("the impact index was not built in time")


async def warm_up(url: str, headers: dict[str, str], body: Any, workers: int) -> tuple[httpx.Response, float]:
    """The first answer and how long it took; then asked until every worker answers from its cache
    (eight quick answers in a row), so that no worker computes it during the measurement."""
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=900) as c:
        t0 = time.monotonic()
        firsts = await asyncio.gather(*(c.post("/api/v1/impact/incident", json=body) for _ in range(2 * workers)))
        took = time.monotonic() - t0
        for a in firsts:
            a.raise_for_status()
        quick = 0
        while quick < 8 * workers:
            t1 = time.monotonic()
            (await c.post("/api/v1/impact/incident", json=body)).raise_for_status()
            quick = quick + 1 if time.monotonic() - t1 < 0.5 else 0
    return firsts[0], took


def sample_store(tmp: Path) -> Path:
    path = tmp / "sample.db"
    store = SqliteStore(path)
    ingest(store, Batch.from_file(SAMPLE))
    store.close()
    return path


def synthetic_store(n: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"api-{n}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    print(f"building the {n:,}-CI estate in {path} (once) ...", flush=True)
    store = SqliteStore(tmp)
    t0 = time.monotonic()
    for _ in ingest_many(store, (Batch.from_dict(d) for d in synthetic_batches(n, batch_size=20_000))):
        pass
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.rename(path)
    print(f"  built in {time.monotonic() - t0:.0f} s", flush=True)
    return path


def token_and_ids(path: Path, core: str) -> tuple[str, str]:
    store = SqliteStore(path)
    try:
        token, _ = create_token(store, load_token_key(store), f"bench-{int(time.time() * 1000)}", "admin")
        return token, resolve_ci(store, default_schema(), core)
    finally:
        store.close()


def batch_docs(k: int, size: int = 1000) -> list[dict[str, Any]]:
    return [{"source": "import:bench", "scope": f"bench-{b}", "cis": [
        {"ref": f"h{i}", "class": "Server", "fqdn": f"b{b:03d}-h{i:05d}.bench.example",
         "hostname": f"b{b:03d}-h{i:05d}", "os": "Debian", "cpu_count": 8, "environment": "production"}
        for i in range(size)]} for b in range(k)]


def load_rate(docs: list[dict[str, Any]], tmp: Path) -> float:
    """CIs/s of ``cmdb load`` of the batch files into an empty store (wall time of the command)."""
    files = []
    for i, d in enumerate(docs):
        f = tmp / f"batch-{i:03d}.json"
        f.write_text(json.dumps(d))
        files.append(str(f))
    db = tmp / "load.db"
    t0 = time.monotonic()
    subprocess.run([*CMDB, "--store", f"sqlite:///{db}", "load", *files], check=True, capture_output=True)
    return sum(len(d["cis"]) for d in docs) / (time.monotonic() - t0)


async def post_batches(url: str, token: str, docs: list[dict[str, Any]], clients: int) -> float:
    sem = asyncio.Semaphore(clients)
    bodies = [json.dumps(d).encode() for d in docs]
    async with httpx.AsyncClient(base_url=url, timeout=600, headers={"Authorization": f"Bearer {token}",
                                                                     "Content-Type": "application/json"}) as c:
        async def one(body: bytes) -> None:
            async with sem:
                r = await c.post("/api/v1/batches", content=body)
                r.raise_for_status()

        t0 = time.monotonic()
        await asyncio.gather(*(one(b) for b in bodies))
        return sum(len(d["cis"]) for d in docs) / (time.monotonic() - t0)


def post_rate(docs: list[dict[str, Any]], tmp: Path, workers: int, clients: int) -> float:
    db = tmp / f"post-{workers}.db"
    SqliteStore(db).close()
    token, _ = token_and_ids_no_ci(db)
    with cmdb_server(f"sqlite:///{db}", workers) as url:
        return asyncio.run(post_batches(url, token, docs, clients))


class Writer:
    """A collector posting a small batch (10 new CIs) every second while wrk runs: each write moves the store's
    write counter, the server rebuilds its impact index and cached answers are computed again."""

    def __init__(self, url: str, token: str, every: float = 1.0) -> None:
        self.url, self.token, self.every = url, token, every
        self.count = 0
        self.error: str | None = None
        self.versions: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.error:
            raise SystemExit(self.error)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as c:
            while not self._stop.wait(self.every):
                k = self.count
                doc = {"source": "import:bench-live", "scope": f"live-{time.time_ns()}", "cis": [
                    {"ref": f"h{i}", "class": "Server", "fqdn": f"live-{k:05d}-{i}.bench.example",
                     "hostname": f"live-{k:05d}-{i}", "environment": "production"}
                    for i in range(10)]}
                answer = c.post("/api/v1/batches", json=doc)
                if answer.status_code != 200:
                    self.error = f"POST /batches answered {answer.status_code}: {answer.text[:200]}"
                    return
                self.count += 1
                seen = c.get("/readyz").json().get("impact_index_writes")
                if isinstance(seen, int):
                    self.versions.add(seen)


def token_and_ids_no_ci(path: Path) -> tuple[str, None]:
    store = SqliteStore(path)
    try:
        return create_token(store, load_token_key(store), "bench-post", "admin")[0], None
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--sizes", default="sample,100000")
    ap.add_argument("--batches", type=int, default=12, help="batches of 1,000 CIs for the POST /batches test")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py needs wrk: apt-get install wrk")
    workers = [int(w) for w in args.workers.split(",")]
    sizes = args.sizes.split(",")
    d, c = args.duration, args.connections
    rows: list[tuple[str, int, dict[str, float], str]] = []
    with tempfile.TemporaryDirectory(prefix="cmdb-bench-api-") as tmpdir:
        tmp = Path(tmpdir)
        stores = {s: (sample_store(tmp) if s == "sample" else synthetic_store(int(s)), "sw-core-fra-1"
                      if s == "sample" else "sw-0000000") for s in sizes}
        docs = batch_docs(args.batches)
        load_cis_s = load_rate(docs, tmp)
        for w in workers:
            with hello_server(w) as url:
                hello = wrk(f"{url}/hello", None, d, c)
            rows.append(("GET /hello (bare FastAPI)", w, hello, ""))
            for size, (path, core) in stores.items():
                token, core_id = token_and_ids(path, core)
                auth = {"Authorization": f"Bearer {token}"}
                with cmdb_server(f"sqlite:///{path}", w) as url:
                    wait_for_index(url)
                    get = wrk(f"{url}/api/v1/cis/{core_id}", token, d, c)
                    rows.append((f"GET /cis/{{id}} [{size}]", w, get, f"{get['rps'] / hello['rps']:.2f}x hello"
                                 f" (CPU per request: {hello['cpu_ms'] / get['cpu_ms']:.2f}x)"))
                    first, took = asyncio.run(warm_up(url, auth, {"cis": [core_id]}, w))
                    answer = first.json()
                    target = 100 if size == "sample" else 250
                    inc = wrk(f"{url}/api/v1/impact/incident", token, d, c, {"cis": [core_id]})
                    rows.append((f"POST /impact/incident {core} [{size}]", w, inc,
                                 f"p99 {'<' if inc['p99'] < target else '>='} {target} ms (answer cache); "
                                 f"{len(answer['affected']):,} CIs affected, {len(first.content) / 1e3:,.0f} kB"))
                    with Writer(url, token) as writer:  # the index rebuilds after each write: answers recomputed
                        live = wrk(f"{url}/api/v1/impact/incident", token, d, c, {"cis": [core_id]})
                    rows.append(("  same, while a batch lands each second", w, live,
                                 f"p99 {'<' if live['p99'] < target else '>='} {target} ms; {writer.count} batches"
                                 f" written, {len(writer.versions)} index versions seen"))
                    fresh = {"Cache-Control": "no-cache"}
                    for conns in (1, c):  # 32 last: computations still queued when wrk stops run on
                        raw = wrk(f"{url}/api/v1/impact/incident", token, d, conns, {"cis": [core_id]}, fresh)
                        rows.append((f"  same, no-cache, {conns} client{'s' if conns > 1 else ''}", w, raw,
                                     f"p99 {'<' if raw['p99'] < target else '>='} {target} ms (computed each time"
                                     + (", queued behind each other)" if conns > 1 else ")")))
                    rows.append(("  first answer after start", w, {"rps": 1 / took, "p50": took * 1000,
                                                                   "p99": took * 1000, "errors": 0},
                                 f"{took:.2f} s for {2 * w} requests at once"))
            rate = post_rate(docs, tmp, w, c)
            rows.append((f"POST /batches x{args.batches} of 1,000 CIs", w,
                         {"rps": rate, "p50": float("nan"), "p99": float("nan"), "errors": 0},
                         f"{rate:,.0f} CIs/s = {rate / load_cis_s:.2f}x cmdb load ({load_cis_s:,.0f} CIs/s)"))
    print(f"\nwrk: {c} connections, {d} s per line; {os.cpu_count()} CPUs shared by server, wrk and anything else\n")
    print(f"{'what':46} {'workers':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>7} {'cpu ms':>7}  note")
    for what, w, r, note in rows:
        print(f"{what:46} {w:>7} {r['rps']:>9,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7.0f}"
              f" {r.get('cpu_ms', float('nan')):>7.2f}  {note}")
    print("\ncpu ms: the server's CPU time (all its processes) per answered request, which other load on the machine"
          " changes far less than req/s and latency; its ratio to hello's is what 2 idle cores would give.")


if __name__ == "__main__":
    main()
