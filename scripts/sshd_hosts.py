"""Test SSH hosts: real OpenSSH ``sshd`` processes on loopback addresses, for tests and the benchmark.

Two kinds of lab:

* ``isolated=True`` (tests; needs root, ``ip`` and ``unshare``): each host gets its own network
  namespace, joined to a bridge by a veth pair whose inner end is ``eth0`` with its own MAC, and its
  own UTS and mount namespaces for sshd with its own host name and bind-mounted ``/etc/hostname`` and
  ``/etc/hosts``. So every host reports its own name, FQDN, MAC, addresses and sockets, as separate
  machines would, and identity keeps them apart. All traffic stays on 127.0.0.0/8: the bridge holds
  ``<subnet>.254``, each host ``<subnet>.<n>``; ``route_localnet`` lets 127/8 cross the veths and a
  ``<subnet>.0/24`` route in the ``local`` table (more specific than its ``127.0.0.0/8``) sends that one
  /24 to the bridge instead of ``lo``. Everything is removed on ``close``.
* ``isolated=False`` (benchmark): plain sshd processes on ``<subnet>.<n>:port`` of the machine's own
  loopback; they all report the same machine.

Every sshd runs ``-D -e`` with its own config, ed25519 host key, pid file and key-only login
(``StrictModes no`` because the keys live under a temporary directory). ``python scripts/sshd_hosts.py
--hosts 3`` starts a lab by hand and prints how to log in.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
CLOUD_INIT_RUN = Path("/run/cloud-init")

_SERVER = r"""
import ctypes, signal, socket, sys
signal.alarm(int(sys.argv[4]))
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[2], int(sys.argv[3])))
s.listen(16)
print("ready", flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
"""

_CLIENT = r"""
import ctypes, signal, socket, sys, time
signal.alarm(int(sys.argv[4]))
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
deadline = time.monotonic() + 10
while True:
    try:
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=2)
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
print("ready", flush=True)
signal.pause()
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=check)


def keygen(path: Path, passphrase: str = "", comment: str = "cmdb-test") -> Path:
    """An ed25519 key pair at ``path`` (0600) and ``path.pub``."""
    for p in (path, path.with_suffix(path.suffix + ".pub")):
        p.unlink(missing_ok=True)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path))
    path.chmod(0o600)
    return path


@dataclass
class SshdHost:
    name: str
    index: int
    address: str
    port: int
    dir: Path
    netns: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    fqdn: str = ""
    mac: str | None = None
    cloud_init: bool = False  # its own /run/cloud-init (see ``SshdLab.set_instance_data``)

    @property
    def cloud_init_dir(self) -> Path:
        return self.dir / "cloud-init"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"


@dataclass
class SshdLab:
    """A set of sshd hosts sharing one client key; ``close`` stops and removes everything."""

    workdir: Path
    subnet: str = "127.0.77"
    isolated: bool = True
    port: int = 22
    domain: str = "lab.test"
    hosts: list[SshdHost] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    user: str = field(default_factory=lambda: os.environ.get("USER") or "root")
    made_cloud_init_run: bool = False  # /run/cloud-init was created as a mount point: removed on close

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.octet = self.subnet.rsplit(".", 1)[-1]
        self.bridge = f"cmdbbr{self.octet}"
        self.client_key = keygen(self.workdir / "client_key")
        self.authorized_keys = self.workdir / "authorized_keys"
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        import pwd

        self.user = pwd.getpwuid(os.getuid()).pw_name
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        if self.isolated:
            if os.geteuid() != 0:
                raise RuntimeError("an isolated sshd lab needs root (network namespaces)")
            self._cleanup_network()
            self._setup_bridge()

    # -- network ------------------------------------------------------------------------------------
    def _netns(self, index: int) -> str:
        return f"cmdb{self.octet}h{index}"

    def _setup_bridge(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "link", "set", self.bridge, "up")
        _run("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        _run("sysctl", "-q", "-w", f"net.ipv4.conf.{self.bridge}.route_localnet=1")
        _run("ip", "route", "add", f"{self.subnet}.0/24", "dev", self.bridge, "table", "local",
             "src", f"{self.subnet}.254")

    def _setup_netns(self, host: SshdHost) -> None:
        ns, veth = self._netns(host.index), f"cmdb{self.octet}v{host.index}"
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", veth, "master", self.bridge, "up")
        host.mac = f"02:7f:00:{int(self.octet):02x}:00:{host.index:02x}"
        _run("ip", "-n", ns, "link", "set", "eth0", "address", host.mac)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1",
             "net.ipv4.conf.eth0.route_localnet=1")
        _run("ip", "-n", ns, "route", "add", f"{self.subnet}.0/24", "dev", "eth0", "table", "local",
             "src", host.address)
        host.netns = ns

    def _cleanup_network(self) -> None:
        # Delete the veths first: a namespace is torn down asynchronously, its veth may outlive "netns del".
        links = _run("ip", "-o", "link", "show", check=False).stdout
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if line.count(":") >= 2 else ""
            if name.startswith(f"cmdb{self.octet}v"):
                _run("ip", "link", "del", name, check=False)
        listed = _run("ip", "netns", "list", check=False).stdout
        prefix = f"cmdb{self.octet}h"
        for line in listed.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(prefix):
                _run("ip", "netns", "del", name, check=False)
        _run("ip", "link", "del", self.bridge, check=False)

    # -- hosts --------------------------------------------------------------------------------------
    def add_host(self, name: str, index: int | None = None, cloud_init: bool = False) -> SshdHost:
        """A host; ``cloud_init``: it sees a directory of its own as ``/run/cloud-init`` (isolated labs), where
        ``set_instance_data`` writes the ``instance-data.json`` an EC2 instance's cloud-init would."""
        index = index or len(self.hosts) + 1
        hdir = self.workdir / name
        hdir.mkdir(parents=True, exist_ok=True)
        host = SshdHost(name, index, f"{self.subnet}.{index}", self.port, hdir, fqdn=f"{name}.{self.domain}",
                        cloud_init=cloud_init and self.isolated)
        if host.cloud_init:
            host.cloud_init_dir.mkdir(exist_ok=True)
            if not CLOUD_INIT_RUN.exists():  # the mount point only; the machine's own view stays empty
                CLOUD_INIT_RUN.mkdir(parents=True)
                self.made_cloud_init_run = True
        keygen(host.host_key, comment=name)
        if self.isolated:
            self._setup_netns(host)
        self.hosts.append(host)
        self.start(host)
        return host

    def set_instance_data(self, host: SshdHost, instance_id: str, region: str = "us-east-1",
                          local_ipv4: str | None = None, mac: str | None = None) -> None:
        """What cloud-init writes on an EC2 instance (``/run/cloud-init/instance-data.json``, the parts SSH
        discovery reads), visible at once inside the host: its ``/run/cloud-init`` is this directory."""
        import json

        if not host.cloud_init:
            raise ValueError(f"{host.name} was added without cloud_init=True")
        doc = {"v1": {"cloud_name": "aws", "platform": "ec2", "instance_id": instance_id, "region": region,
                      "local_hostname": host.name},
               "ds": {"meta_data": {"instance-id": instance_id, "local-ipv4": local_ipv4 or host.address,
                                    "mac": mac or host.mac}}}
        (host.cloud_init_dir / "instance-data.json").write_text(json.dumps(doc, indent=1) + "\n")

    def _config(self, host: SshdHost) -> Path:
        conf = host.dir / "sshd_config"
        conf.write_text(
            f"ListenAddress {host.address}:{host.port}\n"
            f"HostKey {host.host_key}\n"
            f"PidFile {host.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nUseDNS no\nPrintMotd no\n"
            "MaxStartups 200:30:400\nMaxSessions 20\nLoginGraceTime 20\nLogLevel INFO\n"
            "Subsystem sftp internal-sftp\n"
        )
        return conf

    def start(self, host: SshdHost, timeout: float = 10.0) -> None:
        conf = self._config(host)
        seen = host.log.stat().st_size if host.log.exists() else 0
        log = host.log.open("ab")
        if host.netns:
            (host.dir / "hostname").write_text(host.name + "\n")
            (host.dir / "hosts").write_text(f"127.0.0.1 localhost\n{host.address} {host.fqdn} {host.name}\n")
            cloud = f' && mount --bind "{host.cloud_init_dir}" {CLOUD_INIT_RUN}' if host.cloud_init else ""
            argv = ["ip", "netns", "exec", host.netns, "unshare", "--uts", "--mount", "--propagation", "private",
                    "sh", "-c", 'hostname "$1" && mount --bind "$2" /etc/hostname && mount --bind "$3" /etc/hosts'
                    f'{cloud} && exec "$4" -D -e -f "$5"', "sh", host.name, str(host.dir / "hostname"),
                    str(host.dir / "hosts"), SSHD, str(conf)]
        else:
            argv = [SSHD, "-D", "-e", "-f", str(conf)]
        host.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if host.proc.poll() is not None:
                raise RuntimeError(f"sshd for {host.name} exited: {host.log.read_text()[-600:]}")
            if b"Server listening" in host.log.read_bytes()[seen:]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd for {host.name} not up in {timeout:g} s: {host.log.read_text()[-600:]}")
            time.sleep(0.02)

    def stop(self, host: SshdHost) -> None:
        proc, host.proc = host.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self, host: SshdHost, new_host_key: bool = False) -> None:
        """Stops the host's sshd and starts it again, with a fresh host key when asked."""
        self.stop(host)
        if new_host_key:
            keygen(host.host_key, comment=host.name + "-new")
        self.start(host)

    # -- processes inside a host ----------------------------------------------------------------------
    def spawn(self, host: SshdHost, argv: Sequence[str], ready: str | None = "ready",
              timeout: float = 10.0) -> subprocess.Popen[bytes]:
        """Runs ``argv`` inside the host's network namespace, killed at ``close``; waits for a ``ready`` line."""
        full = ["ip", "netns", "exec", host.netns, *argv] if host.netns else list(argv)
        proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        if ready is not None:
            assert proc.stdout is not None
            import selectors

            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise RuntimeError(f"{argv[:3]} in {host.name} not ready within {timeout:g} s")
            line = proc.stdout.readline().decode(errors="replace").strip()
            if line != ready:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr and proc.poll() is not None else ""
                raise RuntimeError(f"{argv[:3]} in {host.name} said {line!r}: {err[-400:]}")
        return proc

    def tcp_server(self, host: SshdHost, process_name: str, port: int, lifetime: int = 300) -> subprocess.Popen[bytes]:
        """A Python TCP server named ``process_name`` (what ss shows) listening on the host's address."""
        return self.spawn(host, [sys.executable, "-c", _SERVER, process_name, host.address, str(port), str(lifetime)])

    def tcp_client(self, host: SshdHost, process_name: str, address: str, port: int,
                   lifetime: int = 300) -> subprocess.Popen[bytes]:
        """A Python process named ``process_name`` holding one connection to ``address:port``."""
        return self.spawn(host, [sys.executable, "-c", _CLIENT, process_name, address, str(port), str(lifetime)])

    # -- teardown -----------------------------------------------------------------------------------
    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs.clear()
        for host in self.hosts:
            self.stop(host)
        if self.isolated:
            self._cleanup_network()
        if self.made_cloud_init_run:
            with contextlib.suppress(OSError):
                CLOUD_INIT_RUN.rmdir()  # only while empty (nothing else came to use it)
            self.made_cloud_init_run = False

    def __enter__(self) -> SshdLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def credentials_file(self, path: Path, profile: str = "lab", key: Path | None = None,
                         extra: str = "") -> Path:
        """A profiles file with one SSH profile for this lab's user and client key (or ``key``)."""
        path.write_text(f"profiles:\n  {profile}:\n    type: ssh\n    username: {self.user}\n"
                        f"    key_file: {key or self.client_key}\n    port: {self.port}\n{extra}")
        return path


def make_certificate(path: Path, common_name: str, days: int = 30, with_key: bool = True) -> str:
    """A self-signed certificate at ``path`` (PEM; the private key in the same file when ``with_key``, as
    combined PEM files often are); returns the certificate's SHA-256 fingerprint (hex)."""
    import datetime
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if with_key:
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()) + pem
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def record(outdir: Path, workdir: Path) -> None:
    """Records every discovery command's output from a two-host lab (orders-api on app1 connected to
    postgres on db1) into ``outdir/<host>/``: ``<command>.out`` and ``meta.json`` (exit statuses, stderr)."""
    import json

    from discovery.credentials import SshProfile
    from discovery.hostkeys import KnownHosts
    from discovery.ssh.commands import commands_for
    from discovery.ssh.session import HostSession

    with SshdLab(workdir, subnet="127.0.79") as lab:
        app, db = lab.add_host("app1"), lab.add_host("db1")
        certs = workdir / "certs"
        make_certificate(certs / "orders-api" / "server.pem", "orders.lab.test")
        lab.tcp_server(db, "postgres", 5432)
        lab.tcp_client(app, "orders-api", db.address, 5432)
        profile = SshProfile("lab", lab.user, key_file=str(lab.client_key))
        known = KnownHosts(workdir / "known_hosts", trust_on_first_use=True)
        for host in (app, db):
            with HostSession.open(host.address, profile, known) as session:
                outputs = session.run_commands(commands_for([str(certs)]))
            hdir = outdir / host.name
            hdir.mkdir(parents=True, exist_ok=True)
            for name, out in outputs.items():
                (hdir / f"{name}.out").write_text(out.stdout)
            meta = {"target": host.address, "address": session.peer_address, "host_key": session.host_key,
                    "profile": "lab", "collected_at": "2025-06-02T10:00:00Z", "cert_paths": [str(certs)],
                    "exit": {n: o.exit_status for n, o in outputs.items()},
                    "stderr": {n: o.stderr for n, o in outputs.items() if o.stderr.strip()}}
            (hdir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            print(f"recorded {host.name} into {hdir}")


def lab_available() -> str | None:
    """Why an isolated lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "unshare", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not Path(SSHD).exists():
        return f"needs {SSHD} (openssh-server)"
    return None


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--subnet", default="127.0.77")
    parser.add_argument("--plain", action="store_true", help="no namespaces (all hosts are this machine)")
    parser.add_argument("--workdir", default="/tmp/cmdb-sshd-lab")
    parser.add_argument("--record", metavar="DIR", help="record the discovery commands' outputs into DIR, then exit")
    args = parser.parse_args()
    if args.record:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        record(Path(args.record), Path(args.workdir))
        return
    lab = SshdLab(Path(args.workdir), subnet=args.subnet, isolated=not args.plain, port=22 if not args.plain else 2200)
    try:
        for n in range(1, args.hosts + 1):
            h = lab.add_host(f"host{n}")
            print(f"{h.name}: ssh -i {lab.client_key} -p {h.port} {lab.user}@{h.address}")
        print("Ctrl-C stops the lab")
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        lab.close()


if __name__ == "__main__":
    main()
