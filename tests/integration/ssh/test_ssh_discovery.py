"""SSH host discovery against real sshd hosts: facts, identity, and the dependency seen on live sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdb.store.base import CIState, SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.hostkeys import KnownHosts
from discovery.outcomes import TargetError
from discovery.ssh.collector import SshHostCollector
from tests.integration.ssh.conftest import Lab, discover, host_key_fingerprint

HOST_CLASSES = ["Host", "Server", "VirtualMachine", "Container"]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cmdb.db")
    try:
        yield s
    finally:
        s.close()


def one(store: SqliteStore, cls: str, **attrs: object) -> CIState:
    page = store.search(SearchQuery(classes=[cls], attrs=dict(attrs), limit=5))
    assert page.total == 1, f"{cls} {attrs}: {[c.name for c in page.items]}"
    return page.items[0]


def one_host(store: SqliteStore, hostname: str) -> CIState:
    page = store.search(SearchQuery(classes=HOST_CLASSES, attrs={"hostname": hostname}, limit=5))
    assert page.total == 1
    return page.items[0]


def out_edges(store: SqliteStore, ci: CIState, rtype: str) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for r in store.relationships(ci.id, type=rtype, direction="out"):
        peer = store.get_ci(r.dst)
        assert peer is not None
        found[f"{peer.cls}:{peer.name}"] = r.attrs
    return found


def test_two_hosts_stay_two_and_the_live_connection_is_a_dependency(ssh_lab: Lab, store: SqliteStore,
                                                                    tmp_path: Path) -> None:
    profiles = ssh_lab.profiles(tmp_path / "creds.yaml")
    targets = [ssh_lab.app.address, ssh_lab.db.address]
    record = discover(store, targets, profiles, tmp_path / "known_hosts", cert_dir=ssh_lab.cert_dir)
    assert [(o["target"], o["outcome"], o["profile"]) for o in record.outcomes] == [
        (ssh_lab.app.address, "ok", "lab"), (ssh_lab.db.address, "ok", "lab")]
    assert [b["outcome"] for b in record.options["run_level_batches"]] == ["ok", "ok"]

    hosts = store.search(SearchQuery(classes=HOST_CLASSES, limit=10)).items
    assert sorted((h.name, h.attrs["fqdn"], tuple(h.attrs["mac_addresses"])) for h in hosts) == [
        ("app1", "app1.lab.test", (ssh_lab.app.mac,)), ("db1", "db1.lab.test", (ssh_lab.db.mac,))]
    app_host = one_host(store, "app1")
    assert app_host.attrs["management_ip"] == ssh_lab.app.address
    assert app_host.attrs["ip_addresses"] == [ssh_lab.app.address]
    assert app_host.attrs["ssh_host_key"] == host_key_fingerprint(ssh_lab.app)  # trusted on first use, recorded
    assert app_host.attrs["ssh_profile"] == "lab" and app_host.attrs["os"] and app_host.attrs["kernel"]
    assert list(out_edges(store, app_host, "HAS_INTERFACE")) == ["Interface:app1 eth0"]

    client = one(store, "Application", name="orders-api@app1.lab.test")
    deps = out_edges(store, client, "DEPENDS_ON")
    evidence = deps.pop("Database:postgres@db1.lab.test")
    assert deps == {}
    assert evidence["ports"] == [5432] and evidence["client_process"] == "orders-api"
    assert evidence["server_process"] == "postgres" and evidence["server_host"] == "db1.lab.test"
    assert evidence["evidence"] == "ss" and len(str(evidence["seen_at"])) == 10
    assert out_edges(store, client, "RUNS_ON") == {f"{app_host.cls}:app1": {}}

    server = one(store, "Database", name="postgres@db1.lab.test")
    assert server.attrs["engine"] == "postgresql" and server.attrs["port"] == 5432
    assert list(out_edges(store, server, "LISTENS_ON")) == [f"ServiceEndpoint:{ssh_lab.db.address}:5432/tcp"]
    assert out_edges(store, server, "USES_CERTIFICATE") == {
        "Certificate:CN=db1.lab.test": {"path": str(ssh_lab.cert_dir / "postgres" / "server.pem")}}
    cert = one(store, "Certificate", fingerprint_sha256=ssh_lab.cert_fingerprint)
    # app1 sees the same file (one filesystem) but runs no postgres: the host itself uses it
    assert f"Certificate:{cert.name}" in out_edges(store, app_host, "USES_CERTIFICATE")
    # the sshd that served discovery is an application too, and its inbound session is no dependency
    sshd = one(store, "Application", name="sshd@db1.lab.test")
    assert out_edges(store, sshd, "DEPENDS_ON") == {}

    # a second run over unchanged hosts changes nothing
    events_before = len(store.events())
    again = discover(store, targets, profiles, tmp_path / "known_hosts", cert_dir=ssh_lab.cert_dir)
    assert [o["outcome"] for o in again.outcomes] == ["ok", "ok"]
    assert sum(o["changes"] for o in again.outcomes) == 0
    assert len(store.events()) == events_before


def test_one_bad_host_never_stops_the_run(ssh_lab: Lab, store: SqliteStore, tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.76.2", 0))  # accepts TCP, never says a word: the SSH banner never comes
    silent.listen(4)
    closed = socket.socket()
    closed.bind(("127.0.76.3", 0))  # bound, not listening: connection refused
    port_silent, port_closed = silent.getsockname()[1], closed.getsockname()[1]
    try:
        profiles = ssh_lab.profiles(tmp_path / "creds.yaml")
        kh = KnownHosts(tmp_path / "known_hosts", trust_on_first_use=True)
        collector = SshHostCollector(profiles, kh, connect_timeout=1.5)
        results: dict[str, str] = {}
        for target, port in ((ssh_lab.app.address, None), ("127.0.76.2", port_silent), ("127.0.76.3", port_closed)):
            collector.port = port
            try:
                collector.read_sync(target)
                results[target] = "ok"
            except TargetError as exc:  # the runner turns these into outcomes; here we read them directly
                results[target] = exc.outcome
        collector.close()
        assert results == {ssh_lab.app.address: "ok", "127.0.76.2": "timeout", "127.0.76.3": "refused"}
    finally:
        silent.close()
        closed.close()

    # and through the runner: the good host is written, the dead one recorded
    record = discover(store, [ssh_lab.app.address, "127.0.76.4"], profiles, tmp_path / "known_hosts2",
                      connect_timeout=2)
    assert {o["target"]: o["outcome"] for o in record.outcomes} == {ssh_lab.app.address: "ok",
                                                                     "127.0.76.4": "refused"}
    assert one_host(store, "app1").attrs["management_ip"] == ssh_lab.app.address
