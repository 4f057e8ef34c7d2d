"""SNMP collection speed, side by side with net-snmp's C tools on the same agents.

(a) One full walk of Debian snmpd's whole MIB tree (v2c, 50 repetitions per GETBULK): var-binds/s of
    our walker (own BER codec) vs ``snmpbulkwalk -v2c -Cr50 -On``, plus pysnmp's ``bulk_walk_cmd``
    (lookupMib=False) and our v3 walker (pysnmp) for reference.
(b) Discovery of N simulated switches (snmpsim, one agent per address 127.0.2.1.., each with system,
    ifTable, ifXTable, IP-MIB, ENTITY-MIB, LLDP and ARP tables): wall time, all at the same
    concurrency, of
      - net-snmp: per agent ``snmpget`` of the system group then one ``snmpbulkwalk`` per table;
      - our walker fetching the same full tables;
      - the collector as shipped (only the columns it uses), collection only;
      - the collector with ingest into a SQLite store (``run_discovery``).

    python bench/snmp.py [--agents 100] [--concurrency 16] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from cmdb.store.sqlite import SqliteStore  # noqa: E402
from discovery.credentials import SecretRef, SnmpProfile  # noqa: E402
from discovery.runner import run_discovery  # noqa: E402
from discovery.snmp.client import SnmpSettings, V2cSession, open_session, walk  # noqa: E402
from discovery.snmp.collector import SnmpCollector  # noqa: E402
from discovery.snmp.oids import SYSTEM_SCALARS, Oid, dotted, oid  # noqa: E402

LAB: Any = importlib.import_module("snmp_agents")  # scripts/snmp_agents.py: snmpd, snmpsim, simulated switches

ROOT = (1, 3)
TABLE_ROOTS: tuple[Oid, ...] = tuple(oid(t) for t in (
    "1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1", "1.3.6.1.2.1.4.20", "1.3.6.1.2.1.4.34", "1.3.6.1.2.1.47.1.1.1",
    "1.0.8802.1.1.2.1.3.7", "1.0.8802.1.1.2.1.4.1", "1.3.6.1.4.1.9.9.23.1.2.1", "1.3.6.1.2.1.4.22",
    "1.3.6.1.2.1.4.35"))
NET_SNMP_ENV = {**os.environ, "MIBS": ""}


def timed(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """Median seconds of ``repeat`` runs, and what the last run counted."""
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def run(coro: Callable[[], Awaitable[int]]) -> Callable[[], int]:
    return lambda: asyncio.run(coro())  # type: ignore[arg-type]


def net_snmp_lines(args: Sequence[str]) -> int:
    """Values a net-snmp tool printed (not its lines for endOfMibView / noSuchObject)."""
    out = subprocess.run(args, capture_output=True, text=True, env=NET_SNMP_ENV, timeout=120, check=True)
    return sum(1 for line in out.stdout.splitlines()
               if " = " in line and not line.split(" = ", 1)[1].startswith(("No more variables", "No Such")))


def v2c_profile(community: str, port: int) -> SnmpProfile:
    os.environ["CMDB_BENCH_COMMUNITY"] = community
    return SnmpProfile("bench", "2c", community=SecretRef("bench", "community", env="CMDB_BENCH_COMMUNITY"),
                       port=port)


# ---------------------------------------------------------------------------------------------- (a)


def single_walk(repeat: int) -> None:
    with LAB.SnmpdAgent() as agent:
        settings = SnmpSettings(timeout=2, retries=1, max_repetitions=50)
        target = f"{agent.host}:{agent.port}"
        cmd = ["snmpbulkwalk", "-v2c", "-c", agent.community, "-Cr50", "-On", target, dotted(ROOT)]

        async def ours() -> int:
            session = await V2cSession(agent.host, agent.port, agent.community, settings).open()
            try:
                return len(await walk(session, [ROOT], settings))
            finally:
                session.close()

        async def ours_v3() -> int:
            profile = SnmpProfile("v3", "3", user=agent.v3_user, auth_protocol="sha",
                                  auth_key=SecretRef("v3", "auth_key", env="CMDB_BENCH_AUTH"), priv_protocol="aes",
                                  priv_key=SecretRef("v3", "priv_key", env="CMDB_BENCH_PRIV"), port=agent.port)
            os.environ.update(CMDB_BENCH_AUTH=agent.auth_key, CMDB_BENCH_PRIV=agent.priv_key)
            session = await open_session(agent.host, profile, settings)
            try:
                return len(await walk(session, [ROOT], settings))
            finally:
                session.close()

        async def pysnmp_walk() -> int:
            from pysnmp.hlapi.v3arch import asyncio as hl

            engine = hl.SnmpEngine()
            n = 0
            async for indication, status, _, varbinds in hl.bulk_walk_cmd(
                    engine, hl.CommunityData(agent.community), await hl.UdpTransportTarget.create(
                        (agent.host, agent.port), timeout=2, retries=1), hl.ContextData(), 0, 50,
                    hl.ObjectType(hl.ObjectIdentity(dotted(ROOT))), lookupMib=False, lexicographicMode=True):
                if indication or status:
                    break
                n += len(varbinds)
            engine.close_dispatcher()
            return n

        c_time, c_count = timed(lambda: net_snmp_lines(cmd), repeat)
        rows = [("net-snmp snmpbulkwalk (C)", c_time, c_count)]
        for name, fn in (("ours: v2c walker (own BER)", ours), ("pysnmp bulk_walk_cmd, lookupMib=False", pysnmp_walk),
                         ("ours: v3 authPriv walker (pysnmp)", ours_v3)):
            seconds, count = timed(run(fn), repeat)
            rows.append((name, seconds, count))
    print(f"\n(a) one full walk of snmpd's MIB tree from {dotted(ROOT)}, 50 repetitions per GETBULK, "
          f"median of {repeat} runs")
    shown = shlex.join(["snmpbulkwalk", "-v2c", "-c", "<community>", "-Cr50", "-On", target, dotted(ROOT)])
    print(f"    net-snmp command: {shown}")
    print(f"    {'walker':40} {'varbinds':>9} {'seconds':>9} {'varbinds/s':>11} {'vs net-snmp':>12}")
    base_rate = c_count / c_time
    for name, seconds, count in rows:
        rate = count / seconds
        print(f"    {name:40} {count:>9} {seconds:>9.3f} {rate:>11,.0f} {rate / base_rate:>11.2f}x")


# ---------------------------------------------------------------------------------------------- (b)


def many_agents(count: int, concurrency: int, repeat: int) -> None:
    specs = LAB.ring(count)
    addresses = [f"127.0.2.{i}" for i in range(1, count + 1)]
    community = "bench-" + os.urandom(4).hex()
    started = time.perf_counter()
    with LAB.SnmpsimAgents([LAB.SimAgent(a, LAB.device_varbinds(s)) for a, s in zip(addresses, specs, strict=True)],
                           community=community) as sim:
        startup = time.perf_counter() - started
        port = sim.port
        profile = v2c_profile(community, port)
        timeout, retries = 1, 2
        settings = SnmpSettings(timeout=timeout, retries=retries, max_repetitions=25)
        walk_settings = SnmpSettings(timeout=timeout, retries=retries, max_repetitions=50)
        flags = ["-v2c", "-c", community, "-On", "-t", str(timeout), "-r", str(retries)]

        def net_snmp_agent(address: str) -> int:
            base = [*flags, f"{address}:{port}"]
            n = net_snmp_lines(["snmpget", *base, *[dotted(o) for o in SYSTEM_SCALARS]])
            for root in TABLE_ROOTS:
                n += net_snmp_lines(["snmpbulkwalk", "-Cr50", *base, dotted(root)])
            return n

        def net_snmp() -> int:
            with ThreadPoolExecutor(concurrency) as pool:
                return sum(pool.map(net_snmp_agent, addresses))

        async def ours_full_tables() -> int:
            sem = asyncio.Semaphore(concurrency)

            async def one(address: str) -> int:
                async with sem:
                    session = await V2cSession(address, port, community, walk_settings).open()
                    try:
                        n = len(await session.get(SYSTEM_SCALARS))
                        for root in TABLE_ROOTS:
                            n += len(await walk(session, [root], walk_settings))
                        return n
                    finally:
                        session.close()

            return sum(await asyncio.gather(*(one(a) for a in addresses)))

        async def collector_only() -> int:
            collector = SnmpCollector([profile], settings)
            sem = asyncio.Semaphore(concurrency)

            async def one(address: str) -> int:
                async with sem:
                    return len((await collector.read(address)).varbinds)

            return sum(await asyncio.gather(*(one(a) for a in addresses)))

        async def with_ingest() -> int:
            with tempfile.TemporaryDirectory() as tmp:
                store = SqliteStore(Path(tmp) / "bench.db")
                try:
                    record = await run_discovery(SnmpCollector([profile], settings), addresses, store,
                                                 concurrency=concurrency)
                finally:
                    store.close()
            bad = [o for o in record.outcomes if o["outcome"] != "ok"]
            if bad:
                raise RuntimeError(f"{len(bad)} agents failed, e.g. {bad[0]}")
            return sum(int(o["items"]) for o in record.outcomes)

        asyncio.run(ours_full_tables())  # warm-up: snmpsim opens its data files on first use
        contenders: list[tuple[str, Callable[[], int], str]] = [
            ("net-snmp: snmpget + snmpbulkwalk -Cr50 per table", net_snmp, "varbinds"),
            ("ours: same full tables (walker, 50 reps)", run(ours_full_tables), "varbinds"),
            ("ours: SnmpCollector.read (columns it uses)", run(collector_only), "varbinds"),
            ("ours: run_discovery + ingest into SQLite", run(with_ingest), "CIs+rels"),
        ]
        # rounds of every contender in turn, so that load from elsewhere on the box hits all of them alike
        times: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
        counts: dict[str, int] = {}
        for _ in range(repeat):
            for name, fn, _ in contenders:
                seconds, counts[name] = timed(fn, 1)
                times[name].append(seconds)
        rows = [(name, statistics.median(times[name]), counts[name], unit) for name, _, unit in contenders]
    print(f"\n(b) discovery of {count} snmpsim agents (127.0.2.1-{count}), concurrency {concurrency} on both sides, "
          f"median of {repeat} rounds (snmpsim start-up {startup:.1f} s, not counted)")
    shown = shlex.join(["-v2c", "-c", "<community>", *flags[3:], f"ADDR:{port}"])
    print(f"    net-snmp per agent: snmpget {shown} <{len(SYSTEM_SCALARS)} system OIDs>; then "
          f"snmpbulkwalk -Cr50 {shown} ROOT for ROOT in {', '.join(dotted(r) for r in TABLE_ROOTS)}")
    print(f"    ours: timeout {timeout} s, {retries} retries; max-repetitions 50 (walker), 25 (collector)")
    print(f"    {'what':48} {'seconds':>9} {'items':>9} {'':9} {'vs net-snmp':>12}")
    base = rows[0][1]
    for name, seconds, n, unit in rows:
        print(f"    {name:48} {seconds:>9.2f} {n:>9} {unit:9} {base / seconds:>11.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100, help="simulated switches for (b); 0 skips (b)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each walker in (a)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every contender in (b)")
    args = parser.parse_args(argv)
    if not 0 <= args.agents <= 250:
        parser.error("--agents must be between 0 and 250 (127.0.2.1-250)")
    load: Any = os.getloadavg()
    print(f"# {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# {os.cpu_count()} CPUs, load average {load[0]:.2f}; ratios > 1 mean faster than net-snmp")
    single_walk(args.repeat)
    if args.agents:
        many_agents(args.agents, args.concurrency, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
