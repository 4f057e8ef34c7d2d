"""A lab of real OpenSSH servers for SSH discovery tests, started once per session.

Four hosts, each sshd in its own network, UTS and mount namespaces (``scripts/sshd_hosts.py``), so
they report their own host names, FQDNs, MACs and sockets as separate machines would:

* ``app1`` (127.0.77.1) runs ``orders-api``, a Python process holding a connection to db1:5432;
* ``db1`` (127.0.77.2) runs ``postgres``, a Python process listening on 5432;
* ``rekey1`` (127.0.77.3) is the host whose key the host-key test changes;
* ``cloud1`` (127.0.77.4) has a ``/run/cloud-init`` of its own, where a test writes the instance data of an
  EC2 instance (``SshdLab.set_instance_data``): an EC2 instance as SSH sees it.

A certificate (with its private key in the same PEM file) lies under ``certs/postgres/``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sshd_hosts import SshdHost, SshdLab, lab_available, make_certificate  # scripts/, on sys.path via tests/conftest

from cmdb.store.base import DiscoveryRunRecord, GraphStore
from discovery.credentials import SshProfile, load_credentials
from discovery.hostkeys import KnownHosts
from discovery.runner import run_discovery
from discovery.ssh.collector import SshHostCollector


@dataclass
class Lab:
    lab: SshdLab
    app: SshdHost
    db: SshdHost
    rekey: SshdHost
    cloud: SshdHost
    cert_dir: Path
    cert_fingerprint: str

    def profiles(self, path: Path, key: Path | None = None, extra: str = "") -> list[SshProfile]:
        """The lab's SSH profile ``lab`` (its client key, or ``key``), loaded through a real profiles file."""
        creds = load_credentials(self.lab.credentials_file(path, key=key, extra=extra))
        return [p for p in creds.pick([], "ssh") if isinstance(p, SshProfile)]


def host_key_fingerprint(host: SshdHost) -> str:
    """What ``ssh-keygen -l`` says of the host's public key: ``SHA256:...``."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", f"{host.host_key}.pub"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    return out.split()[1]


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = lab_available()
    if reason:
        if os.environ.get("CI"):  # CI runs as root with iproute2 and util-linux: a skip there would hide a failure
            pytest.fail(f"sshd lab unavailable in CI: {reason}")
        pytest.skip(f"sshd lab: {reason}")
    lab = SshdLab(tmp_path_factory.mktemp("sshd-lab"), subnet="127.0.77")
    try:
        app, db, rekey = lab.add_host("app1"), lab.add_host("db1"), lab.add_host("rekey1")
        cloud = lab.add_host("cloud1", cloud_init=True)
        cert_dir = lab.workdir / "certs"
        fp = make_certificate(cert_dir / "postgres" / "server.pem", "db1.lab.test")
        lab.tcp_server(db, "postgres", 5432)
        lab.tcp_client(app, "orders-api", db.address, 5432)
        yield Lab(lab, app, db, rekey, cloud, cert_dir, fp)
    finally:
        lab.close()


def discover(store: GraphStore, targets: list[str], profiles: Sequence[SshProfile], known_hosts: Path, *,
             tofu: bool = True, cert_dir: Path | None = None, connect_timeout: float = 10.0) -> DiscoveryRunRecord:
    """One real discovery run (the collector and the runner, as the CLI uses them); the saved run record."""
    collector = SshHostCollector(profiles, KnownHosts(known_hosts, trust_on_first_use=tofu),
                                 cert_paths=[str(cert_dir)] if cert_dir else (), connect_timeout=connect_timeout,
                                 command_timeout=20)
    try:
        return asyncio.run(run_discovery(collector, targets, store, concurrency=4, target_timeout=60))
    finally:
        collector.close()
