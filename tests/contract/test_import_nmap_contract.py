"""nmap imports on every store: a re-import writes nothing, and an nmap host is the scanned host."""

from __future__ import annotations

from pathlib import Path

from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import GraphStore, SearchQuery
from discovery.scan.transform import transform_scan
from importers.nmap import read_nmap, transform_nmap
from importers.table_import import ImportReport, import_batches

DATA = Path(__file__).resolve().parent.parent / "data" / "nmap"


def import_nmap(store: GraphStore, dry_run: bool = False) -> ImportReport:
    reading = transform_nmap(read_nmap(DATA / "loopback.xml"))
    return import_batches(store, [([], b) for b in reading.batches], ImportReport("loopback.xml", "import:nmap"),
                          schema=default_schema(), config=ReconcileConfig(), dry_run=dry_run)


def of_class(store: GraphStore, cls: str) -> list[dict[str, object]]:
    page = store.search(SearchQuery(classes=default_schema().descendants(cls), limit=100))
    return [{"id": c.id, **c.attrs, "sources": sorted({s for s, _ in c.sightings})} for c in page.items]


def test_nmap_host_is_the_scanned_host_and_reimport_writes_nothing(store: GraphStore) -> None:
    scanned = transform_scan({"target": "127.0.0.1", "address": "127.0.0.1", "ports": [
        {"port": 44911, "state": "open", "banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"},
        {"port": 1, "state": "closed"}]})
    assert scanned.batch is not None
    ingest(store, scanned.batch)
    first = import_nmap(store)
    assert first.totals["conflicts"] == 0
    hosts = of_class(store, "Host")
    assert len(hosts) == 2
    lo = next(h for h in hosts if h["management_ip"] == "127.0.0.1")
    assert lo["sources"] == ["import:nmap", "scan"]
    endpoints = {e["port"]: e for e in of_class(store, "ServiceEndpoint")}
    assert sorted(endpoints) == [22, 80, 44673, 44911]
    ssh = endpoints[44911]
    assert ssh["sources"] == ["import:nmap", "scan"] and ssh["product"] == "OpenSSH"
    assert ssh["banner"] == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"  # the scan's fact, kept
    certs = of_class(store, "Certificate")
    assert [(c["subject"], c["not_after"]) for c in certs] == [("CN=scan-test.example", "2026-12-24T13:47:58Z")]
    uses = store.relationships(type="USES_CERTIFICATE")
    assert [(r.src, r.dst) for r in uses] == [(endpoints[44673]["id"], certs[0]["id"])]
    events = len(store.events())
    again = import_nmap(store)
    assert again.totals["events"] == 0 and again.totals["created"] == 0
    assert len(store.events()) == events


def test_nmap_dry_run_writes_nothing(store: GraphStore) -> None:
    report = import_nmap(store, dry_run=True)
    assert store.stats()["cis"] == 0
    assert sorted({i.action for _, p in report.plans for i in p.items}) == ["create"]
    assert sum(p.rels_created for _, p in report.plans) == 7
