"""SSH host facts from 20 real sshd hosts: the cmdb SSH collector against ``ansible -m setup``.

The hosts are OpenSSH servers started here (``scripts/sshd_hosts.py``) on 127.0.4.1-20, each in its
own network/UTS/mount namespaces when run as root (else plain sshd processes of this machine). Both
tools log in with the same key, the same user and the same concurrency (ansible ``--forks``), host
key checking off for ansible (``ANSIBLE_HOST_KEY_CHECKING=False``) and trust on first use for cmdb,
and every round starts cold: no SSH connection survives from one round to the next (ansible's
ControlPersist sockets go to a fresh directory per round). Printed per tool: median wall time of the
rounds, hosts that answered, and the ratio. ``cmdb collect`` is what the ansible run does (log in,
gather, parse); ``cmdb run`` also writes every host, and the dependency map, to a SQLite store.

Needs ``ansible-core`` (``pip install ansible-core``; the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from cmdb.store.sqlite import SqliteStore  # noqa: E402
from discovery.credentials import SshProfile  # noqa: E402
from discovery.hostkeys import KnownHosts  # noqa: E402
from discovery.observations import to_batch  # noqa: E402
from discovery.outcomes import Outcome, TargetError, TargetResult  # noqa: E402
from discovery.runner import run_discovery  # noqa: E402
from discovery.ssh.collector import SshHostCollector  # noqa: E402


def collect_round(targets: Sequence[str], profile: SshProfile, known: Path, concurrency: int) -> tuple[float, int]:
    """Wall time and number of ok hosts for one cold collect of every target (no store)."""
    collector = SshHostCollector([profile], KnownHosts(known, trust_on_first_use=True), concurrency=concurrency)
    sem = asyncio.Semaphore(concurrency)

    async def one(t: str) -> TargetResult:
        async with sem:
            try:
                seen = collector.transform(await collector.read(t, None))  # login, commands, parse, transform
                assert seen.facts is not None
                to_batch(collector.source, seen.scope, seen.complete, seen.facts)
                return TargetResult(t, Outcome.OK)
            except TargetError as exc:
                return TargetResult(t, exc.outcome, str(exc))

    async def everything() -> list[TargetResult]:
        return await asyncio.gather(*(one(t) for t in targets))

    started = time.perf_counter()
    results = asyncio.run(everything())
    seconds = time.perf_counter() - started
    collector.close()
    bad = [r for r in results if r.outcome != Outcome.OK]
    for r in bad[:3]:
        print(f"  cmdb collect {r.target}: {r.outcome} {r.detail}", file=sys.stderr)
    return seconds, len(results) - len(bad)


def run_round(targets: Sequence[str], profile: SshProfile, known: Path, concurrency: int,
              store_path: Path) -> tuple[float, int]:
    """Wall time and ok hosts of a whole discovery run, ingest and dependency map included."""
    collector = SshHostCollector([profile], KnownHosts(known, trust_on_first_use=True), concurrency=concurrency)
    store = SqliteStore(store_path)
    try:
        started = time.perf_counter()
        record = asyncio.run(run_discovery(collector, targets, store, concurrency=concurrency))
        seconds = time.perf_counter() - started
    finally:
        collector.close()
        store.close()
    return seconds, sum(1 for o in record.outcomes if o["outcome"] == "ok")


def ansible_round(inventory: Path, forks: int, workdir: Path) -> tuple[float, int]:
    """Wall time and SUCCESS count of ``ansible all -m setup``, cold (fresh ControlPersist directory)."""
    round_dir = Path(tempfile.mkdtemp(prefix="ansible-", dir=workdir))
    (round_dir / "ansible.cfg").write_text("[defaults]\n")  # no user or system configuration
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_FORKS": str(forks),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(round_dir / "cp"), "ANSIBLE_LOCAL_TEMP": str(round_dir / "tmp"),
           "ANSIBLE_REMOTE_TMP": "/tmp/.ansible-bench", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(round_dir / "ansible.cfg"),
           "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", "ANSIBLE_DEPRECATION_WARNINGS": "False"}
    ansible = str(Path(sys.executable).parent / "ansible")
    started = time.perf_counter()
    proc = subprocess.run([ansible, "all", "-i", str(inventory), "-m", "setup", "-f", str(forks), "-o"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    seconds = time.perf_counter() - started
    ok = sum(1 for line in proc.stdout.splitlines() if " | SUCCESS" in line)
    if ok == 0:
        print(f"  ansible: exit {proc.returncode}: {(proc.stdout + proc.stderr)[-800:]}", file=sys.stderr)
    return seconds, ok


def write_inventory(path: Path, hosts: Sequence[Any], user: str, key: Path) -> Path:
    lines = ["[lab]"] + [f"{h.name} ansible_host={h.address} ansible_port={h.port} ansible_user={user} "
                         f"ansible_ssh_private_key_file={key}" for h in hosts]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10, help="cmdb concurrency = ansible forks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subnet", default="127.0.4")
    parser.add_argument("--plain", action="store_true", help="plain sshd processes, no namespaces")
    args = parser.parse_args()
    if shutil.which("ansible", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("ansible-core is not installed in this environment: pip install ansible-core")
    lab_mod = importlib.import_module("sshd_hosts")
    isolated = not args.plain and lab_mod.lab_available() is None
    workdir = Path(tempfile.mkdtemp(prefix="cmdb-bench-ssh-"))
    lab = lab_mod.SshdLab(workdir / "lab", subnet=args.subnet, isolated=isolated, port=22 if isolated else 2222)
    try:
        hosts = [lab.add_host(f"bench{n:02d}") for n in range(1, args.hosts + 1)]
        targets = [h.address for h in hosts]
        profile = SshProfile("bench", lab.user, key_file=str(lab.client_key), port=hosts[0].port)
        inventory = write_inventory(workdir / "inventory.ini", hosts, lab.user, lab.client_key)
        import ansible

        kind = "own network/UTS/mount namespaces" if isolated else "plain processes, one machine"
        print(f"SSH facts from {len(hosts)} sshd hosts on {targets[0]}..{targets[-1]} ({kind}), "
              f"concurrency/forks {args.concurrency}, {args.rounds} cold rounds each, median wall time")
        timings: dict[str, list[float]] = {"collect": [], "run": [], "ansible": []}
        oks: dict[str, int] = {}
        for r in range(args.rounds):
            known = workdir / f"known_hosts_{r}"
            t, oks["collect"] = collect_round(targets, profile, known, args.concurrency)
            timings["collect"].append(t)
            t, oks["run"] = run_round(targets, profile, known, args.concurrency, workdir / f"cmdb_{r}.db")
            timings["run"].append(t)
            t, oks["ansible"] = ansible_round(inventory, args.concurrency, workdir)
            timings["ansible"].append(t)
        med = {k: statistics.median(v) for k, v in timings.items()}
        n = len(hosts)
        print(f"  cmdb ssh collector (login, commands, parse, transform): {med['collect']:7.2f} s   "
              f"{oks['collect']}/{n} ok   rounds {', '.join(f'{x:.2f}' for x in timings['collect'])}")
        print(f"  cmdb discover ssh run (+ SQLite ingest, dependency map): {med['run']:7.2f} s   "
              f"{oks['run']}/{n} ok   rounds {', '.join(f'{x:.2f}' for x in timings['run'])}")
        print(f"  ansible {ansible.__version__} -m setup:                        {med['ansible']:7.2f} s   "
              f"{oks['ansible']}/{n} SUCCESS   rounds {', '.join(f'{x:.2f}' for x in timings['ansible'])}")
        print(f"  ratio ansible / cmdb collector: {med['ansible'] / med['collect']:.1f}x   "
              f"ansible / cmdb full run: {med['ansible'] / med['run']:.1f}x")
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
