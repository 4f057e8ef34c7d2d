"""Scan throughput on a loopback /24: ``cmdb scan`` beside a sequential connect loop and ``nmap -sT``.

A listener process (this script with ``--serve``) holds four common ports on every address of the
range: a few SSH-banner listeners and TLS listeners, a few "silent" hosts whose ports have full
accept queues (connects time out, like a firewall dropping SYNs), and a bound-but-not-listening
socket everywhere else (connects are refused). Then, for two target sets (the answering addresses
only; the whole range with the silent hosts) it times:

- ``cmdb scan`` end to end (a real process writing a SQLite store: start-up, probes, banners,
  TLS chains, ingest), at the default rate limit and with ``--rate 0``;
- the probe engine alone (``Prober``, no store);
- a sequential ``socket.connect`` loop (no banners, no TLS): the naive baseline;
- ``nmap -sT -Pn -n`` when nmap is installed (connect scan, no ping, no DNS).

Figures are addresses per second; ratios are against the sequential loop. Run:
``.venv/bin/python bench/scan.py`` (about a minute). Loopback has no latency, so a sequential loop
is quick where every port answers; concurrency pays where hosts are silent, as on real networks.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from loopback_ports import hold_common_port  # noqa: E402

BANNER = b"SSH-2.0-bench\r\n"




def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.scan.example")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=5))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.scan.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "bench.pem", directory / "bench.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def serve(network: str, banners: int, tls: int, silent: int) -> None:
    """The listener process: prints its layout as one JSON line, serves until stdin closes."""
    addresses = [str(a) for a in ipaddress.ip_network(network).hosts()]
    ports: list[int] = []
    socks: list[dict[str, socket.socket]] = []
    for _ in range(4):
        port, held = hold_common_port(addresses)
        ports.append(port)
        socks.append(held)
    banner_port, tls_port = ports[0], ports[1]
    step = max(1, len(addresses) // (banners + tls + silent + 1))
    chosen = addresses[step::step]
    banner_hosts, tls_hosts = chosen[:banners], chosen[banners:banners + tls]
    silent_hosts = chosen[banners + tls:banners + tls + silent]
    workdir = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    cert_file, key_file = self_signed(workdir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    shutil.rmtree(workdir, ignore_errors=True)
    fillers: list[socket.socket] = []

    async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await asyncio.wait_for(reader.read(4096), 10):
                pass
        except (TimeoutError, OSError, ssl.SSLError):
            pass
        writer.transport.abort()

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await drain(reader, writer)

    async def main() -> None:
        servers = []
        for a in banner_hosts:
            socks[0][a].listen(64)
            servers.append(await asyncio.start_server(banner, sock=socks[0][a]))
        for a in tls_hosts:
            socks[1][a].listen(64)
            servers.append(await asyncio.start_server(drain, sock=socks[1][a], ssl=ctx))
        for a in silent_hosts:
            for i, port in enumerate(ports):
                s = socks[i][a]
                s.listen(0)
                for _ in range(8):
                    c = socket.socket()
                    c.settimeout(0.3)
                    try:
                        c.connect((a, port))
                    except OSError:
                        c.close()
                        break
                    fillers.append(c)
        print(json.dumps({"ports": ports, "banner_port": banner_port, "tls_port": tls_port,
                          "banner_hosts": banner_hosts, "tls_hosts": tls_hosts, "silent_hosts": silent_hosts,
                          "addresses": len(addresses)}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
        for srv in servers:
            srv.close()

    asyncio.run(main())


def sequential(addresses: list[str], ports: list[int], timeout: float) -> dict[str, int]:
    """The naive baseline: one blocking connect after another."""
    states = {"open": 0, "closed": 0, "filtered": 0}
    for a in addresses:
        for p in ports:
            s = socket.socket()
            s.settimeout(timeout)
            try:
                s.connect((a, p))
                states["open"] += 1
            except ConnectionRefusedError:
                states["closed"] += 1
            except OSError:
                states["filtered"] += 1
            finally:
                s.close()
    return states


def engine(addresses: list[str], ports: list[int], tls_port: int, timeout: float) -> dict[str, int]:
    from discovery.scan.ports import WELL_KNOWN_TLS_PORTS
    from discovery.scan.probe import Prober, ProbeSettings

    settings = ProbeSettings(ports=tuple(ports), tls_ports=frozenset({tls_port}) | WELL_KNOWN_TLS_PORTS,
                             connect_timeout=timeout, dns=False, rate=None)

    async def run() -> dict[str, int]:
        prober = Prober(settings)
        try:
            await asyncio.gather(*(prober.probe_target(a) for a in addresses))
        finally:
            prober.close()
        return dict(prober.stats.by_state)

    return asyncio.run(run())


def timed(label: str, command: str, n: int, fn: Any) -> tuple[str, float, Any]:
    started = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - started
    print(f"  {label:<34} {seconds:7.2f} s  {n / seconds:9.0f} addresses/s   {command}", flush=True)
    return label, seconds, out


def cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, timeout=600,
                          check=False, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"cmdb failed: {proc.stderr}")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--network", default="127.0.3.0/24")
    parser.add_argument("--banners", type=int, default=8)
    parser.add_argument("--tls", type=int, default=4)
    parser.add_argument("--silent", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    net = ipaddress.ip_network(opts.network)
    if not (isinstance(net, ipaddress.IPv4Network) and net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8"))):
        raise SystemExit("the benchmark stays on loopback: give a network inside 127.0.0.0/8")
    if opts.serve:
        serve(opts.network, opts.banners, opts.tls, opts.silent)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--network", opts.network, "--banners",
                               str(opts.banners), "--tls", str(opts.tls), "--silent", str(opts.silent)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        layout = json.loads(server.stdout.readline())
        run(opts, layout)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def run(opts: argparse.Namespace, layout: dict[str, Any]) -> None:
    ports: list[int] = layout["ports"]
    port_list = ",".join(map(str, ports))
    every = [str(a) for a in ipaddress.ip_network(opts.network).hosts()]
    silent: list[str] = layout["silent_hosts"]
    answering = [a for a in every if a not in silent]
    nmap = shutil.which("nmap")
    print(f"loopback range {opts.network}: {len(every)} addresses x {len(ports)} ports ({port_list}); "
          f"{len(layout['banner_hosts'])} SSH-banner listeners, {len(layout['tls_hosts'])} TLS listeners, "
          f"{len(silent)} silent hosts (every port filtered); connect timeout {opts.timeout:g} s; "
          f"{os.cpu_count()} CPUs; nmap: {nmap or 'not installed'}")
    work = Path(tempfile.mkdtemp(prefix="bench-scan-db-"))
    try:
        compare(opts, layout, work, every, silent, answering, nmap)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(opts: argparse.Namespace, layout: dict[str, Any], work: Path, every: list[str], silent: list[str],
            answering: list[str], nmap: str | None) -> None:
    ports: list[int] = layout["ports"]
    port_list = ",".join(map(str, ports))
    for title, targets, exclude in (("answering addresses only", answering, silent),
                                    ("whole range, silent hosts included", every, [])):
        n = len(targets)
        print(f"\n{title}: {n} addresses, {n * len(ports)} probes")
        ex = ["--exclude", ",".join(exclude)] if exclude else []
        results: list[tuple[str, float, Any]] = []
        for label, rate in (("cmdb scan (default --rate 1000)", []), ("cmdb scan --rate 0", ["--rate", "0"])):
            db = work / f"{len(results)}-{n}.db"
            args = ["--store", f"sqlite:///{db}", "scan", opts.network, *ex, "--ports", port_list, "--tls-ports",
                    str(layout["tls_port"]), "--timeout", str(opts.timeout), "--no-dns", "--json", *rate]
            results.append(timed(label, "cmdb " + " ".join(args), n, lambda args=args: cli(args)))
        results.append(timed("probe engine (Prober, no store)", "Prober.probe_target x targets, rate off", n,
                             lambda t=targets: engine(t, ports, layout["tls_port"], opts.timeout)))
        base = timed("sequential connect loop", f"socket.connect x {n * len(ports)}, timeout {opts.timeout:g}", n,
                     lambda t=targets: sequential(t, ports, opts.timeout))
        results.append(base)
        if nmap:
            ex_nmap = ["--exclude", ",".join(exclude)] if exclude else []
            args = [nmap, "-sT", "-Pn", "-n", "-p", port_list, *ex_nmap, opts.network]
            results.append(timed("nmap -sT", " ".join(args), n,
                                 lambda args=args: subprocess.run(args, capture_output=True, timeout=900, check=True)))
        print("  ratio (addresses/s vs the sequential loop): " + ", ".join(
            f"{label}: {base[1] / seconds:.2f}x" for label, seconds, _ in results if label != base[0]))
        print(f"  states: engine {results[2][2]}, sequential {base[2]}")


if __name__ == "__main__":
    main()
