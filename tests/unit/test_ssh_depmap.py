"""Application dependency mapping across hosts (pure), on recorded lab sockets and small hand-made hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from discovery.ssh.depmap import map_dependencies
from discovery.ssh.facts import CommandOutput, HostFacts, build_facts
from discovery.ssh.transform import transform_host
from tests.unit.test_ssh_parsers import recorded


def host(name: str, address: str, sockets: str, extra_addrs: tuple[str, ...] = ()) -> HostFacts:
    """A host with one NIC (``address`` and ``extra_addrs``) and the given ``ss -tanpH`` lines."""
    links = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 state UNKNOWN\\    link/loopback 00:00:00:00:00:00 brd "
             "00:00:00:00:00:00\n2: eth0: <BROADCAST,UP,LOWER_UP> mtu 1500 state UP\\    link/ether "
             f"02:00:00:00:00:{int(address.rsplit('.', 1)[1]):02x} brd ff:ff:ff:ff:ff:ff\n")
    addrs = "1: lo    inet 127.0.0.1/8 scope host lo\n" + "".join(
        f"2: eth0    inet {a}/24 scope global eth0\n" for a in (address, *extra_addrs))
    outputs = {"hostname": CommandOutput("hostname", 0, name + "\n"), "links": CommandOutput("links", 0, links),
               "addrs": CommandOutput("addrs", 0, addrs), "sockets": CommandOutput("sockets", 0, sockets)}
    return build_facts(address, address, outputs, collected_at="2025-06-02T10:11:12Z")


def edges(batches: list[Batch]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """(src class, src name, dst class, dst name or address:port) -> attributes of every DEPENDS_ON."""
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for b in batches:
        cis = {c.ref: c for c in b.cis}
        for r in b.rels:
            if r.type != "DEPENDS_ON":
                continue
            s, d = cis[str(r.src)], cis[str(r.dst)]
            dname = d.attrs.get("name") or f"{d.attrs['address']}:{d.attrs['port']}"
            out[(s.cls, s.attrs["name"], d.cls, dname)] = r.attrs
    return out


APP = """\
LISTEN 0 128 0.0.0.0:8080 0.0.0.0:* users:(("gunicorn",pid=10,fd=5))
ESTAB 0 0 10.0.0.1:8080 10.0.0.9:50000 users:(("gunicorn",pid=11,fd=7))
ESTAB 0 0 10.0.0.1:40001 10.0.0.2:5432 users:(("gunicorn",pid=11,fd=8))
ESTAB 0 0 10.0.0.1:40002 10.0.0.2:5432 users:(("gunicorn",pid=12,fd=8))
ESTAB 0 0 10.0.0.1:40003 10.0.0.2:6000 users:(("gunicorn",pid=12,fd=9))
ESTAB 0 0 10.0.0.1:40004 10.0.0.2:41000 users:(("gunicorn",pid=12,fd=10))
ESTAB 0 0 127.0.0.1:40005 127.0.0.1:6379 users:(("gunicorn",pid=12,fd=11))
LISTEN 0 128 127.0.0.1:6379 0.0.0.0:* users:(("redis-server",pid=20,fd=6))
ESTAB 0 0 127.0.0.1:6379 127.0.0.1:40005 users:(("redis-server",pid=20,fd=7))
ESTAB 0 0 10.0.0.1:40006 192.0.2.80:443 users:(("gunicorn",pid=12,fd=12))
ESTAB 0 0 10.0.0.1:40007 127.0.0.1:9999 users:(("gunicorn",pid=12,fd=13))
TIME-WAIT 0 0 10.0.0.1:40008 10.0.0.2:5432
"""
DB = """\
LISTEN 0 128 [::]:5432 [::]:* users:(("postgres",pid=30,fd=5))
ESTAB 0 0 10.0.0.2:5432 10.0.0.1:40001 users:(("postgres",pid=31,fd=9))
ESTAB 0 0 10.0.0.2:5432 10.0.0.1:40002 users:(("postgres",pid=32,fd=9))
ESTAB 0 0 10.0.0.2:41000 10.0.0.1:40004 users:(("backup-agent",pid=33,fd=3))
ESTAB 0 0 10.0.0.2:6000 10.0.0.1:40003 users:(("x-agent",pid=34,fd=3))
"""


def test_client_to_server_across_hosts_with_evidence() -> None:
    found = edges(map_dependencies([host("app", "10.0.0.1", APP), host("db", "10.0.0.2", DB)]))
    assert found[("Application", "gunicorn@app", "Database", "postgres@db")] == {
        "evidence": "ss", "ports": [5432], "client_process": "gunicorn", "client_host": "app",
        "server_process": "postgres", "server_host": "db", "seen_at": "2025-06-02"}
    # a local dependency through loopback, to a known database process
    assert ("Application", "gunicorn@app", "Database", "redis-server@app") in found
    # a host that is not discovered: an unresolved endpoint of the remote side
    assert found[("Application", "gunicorn@app", "ServiceEndpoint", "192.0.2.80:443")]["ports"] == [443]


def test_ephemeral_ports_inbound_sides_and_dead_ends_make_no_edge() -> None:
    found = edges(map_dependencies([host("app", "10.0.0.1", APP), host("db", "10.0.0.2", DB)]))
    names = {(k[1], k[3]) for k in found}
    # 10.0.0.2:41000 and :6000 are not LISTEN ports on db: not services, even though a process holds them
    assert not any(dst.endswith(("41000", "6000")) or "backup-agent" in dst or "x-agent" in dst for _, dst in names)
    # db's sockets on 5432 are the server side: postgres depends on nothing
    assert not any(src.startswith(("postgres", "backup-agent", "x-agent")) for src, _ in names)
    # nothing listens on 127.0.0.1:9999 of app: no edge, and no loopback endpoint that would merge hosts
    assert not any("9999" in dst for _, dst in names)
    assert len(found) == 3


def test_unresolved_until_the_server_host_is_discovered() -> None:
    alone = edges(map_dependencies([host("app", "10.0.0.1", APP)]))
    assert ("Application", "gunicorn@app", "ServiceEndpoint", "10.0.0.2:5432") in alone
    both = edges(map_dependencies([host("app", "10.0.0.1", APP), host("db", "10.0.0.2", DB)]))
    assert ("Application", "gunicorn@app", "ServiceEndpoint", "10.0.0.2:5432") not in both


def test_batches_scope_completeness_and_failed_peers() -> None:
    batches = map_dependencies([host("app", "10.0.0.1", APP), host("db", "10.0.0.2", DB)])
    assert [(b.source, b.scope, b.complete) for b in batches] == [("ssh", "depmap:10.0.0.1/32", True),
                                                                  ("ssh", "depmap:10.0.0.2/32", True)]
    # db failed this run: app's edges towards it are unknown, so app's dependency view is partial
    partial = map_dependencies([host("app", "10.0.0.1", APP)], failed_targets=["10.0.0.2"])
    assert partial[0].complete is False
    # a host whose sockets could not be read makes no dependency batch
    blind = host("db", "10.0.0.2", DB)
    blind.sockets = None
    assert [b.scope for b in map_dependencies([host("app", "10.0.0.1", APP), blind])] == ["depmap:10.0.0.1/32"]


def test_recorded_lab_sockets() -> None:
    found = edges(map_dependencies([recorded("app1"), recorded("db1")]))
    assert list(found) == [("Application", "orders-api@app1.lab.test", "Database", "postgres@db1.lab.test")]
    attrs = found[("Application", "orders-api@app1.lab.test", "Database", "postgres@db1.lab.test")]
    assert attrs["ports"] == [5432] and attrs["client_process"] == "orders-api"
    assert attrs["server_process"] == "postgres"


def test_dependency_batches_ingest_after_the_host_batches(tmp_path: Path) -> None:
    hosts = [host("app", "10.0.0.1", APP), host("db", "10.0.0.2", DB)]
    store = SqliteStore(tmp_path / "cmdb.db")
    try:
        for h in hosts:
            ingest(store, transform_host(h))
        for b in map_dependencies(hosts):
            res = ingest(store, b)
            assert not res.conflicts
        app = store.search(SearchQuery(classes=["Application"], attrs={"name": "gunicorn@app"}, limit=5)).items[0]
        out = {(r.type, getattr(store.get_ci(r.dst), "name", None)) for r in store.relationships(app.id,
                                                                                                  direction="out")}
        assert out == {("RUNS_ON", "app"), ("LISTENS_ON", "10.0.0.1:8080/tcp"), ("DEPENDS_ON", "postgres@db"),
                       ("DEPENDS_ON", "redis-server@app"), ("DEPENDS_ON", "192.0.2.80:443/tcp")}
        hosts_found = store.search(SearchQuery(classes=["Host", "Server", "VirtualMachine", "Container"], limit=10))
        assert sorted(c.attrs["hostname"] for c in hosts_found.items) == ["app", "db"]  # no duplicate host stub
        again = [ingest(store, b) for b in map_dependencies(hosts)]
        assert sum(r.events for r in again) == 0
    finally:
        store.close()
