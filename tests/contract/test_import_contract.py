"""Mapped tabular imports on every store: identity, idempotency, precedence, atomicity, dry run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.model import default_schema
from cmdb.store.base import GraphStore, SearchQuery
from discovery.scan.transform import transform_scan
from importers.mapping import load_mapping
from importers.table_import import RowsRejectedError, TableImport

DATA = Path(__file__).resolve().parent.parent / "data" / "tabular"


def run_import(store: GraphStore, name: str, **kw: object) -> TableImport:
    job = TableImport(store, DATA / name, load_mapping(DATA / "servers.map.yaml", default_schema()))
    job.report = job.run(**kw)  # type: ignore[attr-defined, arg-type]
    return job


def cis_of(store: GraphStore, cls: str) -> dict[str, dict[str, object]]:
    page = store.search(SearchQuery(classes=default_schema().descendants(cls), limit=100))
    return {str(c.name): c.attrs for c in page.items}


@pytest.mark.parametrize("name", ["servers.csv", "servers.json", "servers.yaml"])
def test_import_then_reimport_changes_nothing(store: GraphStore, name: str) -> None:
    first = run_import(store, name).report  # type: ignore[attr-defined]
    assert first.totals["created"] == 6 and first.totals["rels_created"] == 3  # 4 servers, 2 people
    servers = cis_of(store, "Server")
    assert sorted(servers) == ["batch, reports", "db-01", "web-01", "web-02"]
    assert servers["web-01"]["ip_addresses"] == ["10.20.0.11", "10.20.0.12"]
    owned = store.relationships(type="OWNED_BY")
    people = {c.attrs["email"] for c in store.get_cis({r.dst for r in owned}).values()}
    assert people == {"ana.lopez@example.com", "bob.smith@example.com"}
    events = len(store.events())
    again = run_import(store, name).report  # type: ignore[attr-defined]
    assert again.totals["created"] == 0 and again.totals["events"] == 0 and again.totals["unchanged"] == 6
    assert len(store.events()) == events
    assert {r.source for r in store.runs()} == {"import:assets"}


def test_imported_host_merges_with_the_scanned_one_and_precedence_holds(store: GraphStore) -> None:
    scanned = transform_scan({"target": "10.20.0.13", "address": "10.20.0.13", "ptr": "web-02.example.com",
                              "ports": [{"port": 22, "state": "open", "banner": "SSH-2.0-OpenSSH_9.2"}]})
    assert scanned.batch is not None
    ingest(store, scanned.batch)
    ingest(store, Batch.from_dict({"source": "ssh", "cis": [
        {"class": "Server", "serial_number": "SRV-2001", "hostname": "db-01", "environment": "staging"}]}))
    run_import(store, "servers.csv")
    hosts = store.search(SearchQuery(classes=default_schema().descendants("Host"), limit=100)).items
    web02 = [h for h in hosts if h.attrs.get("hostname") == "web-02"]
    assert len(web02) == 1 and len(hosts) == 4
    assert web02[0].cls == "Server" and web02[0].attrs["serial_number"] == "SRV-1002"
    assert web02[0].attrs["fqdn"] == "web-02.example.com"  # the scan's fact is kept
    assert {s for s, _ in web02[0].sightings} == {"scan", "import:assets"}
    db01 = next(h for h in hosts if h.attrs.get("hostname") == "db-01")
    assert db01.attrs["environment"] == "staging"  # ssh outranks import
    assert db01.provenance["environment"]["import:assets"].value == "production"


def test_dry_run_explains_and_writes_nothing(store: GraphStore, tmp_path: Path) -> None:
    ingest(store, Batch.from_dict({"source": "ssh", "cis": [
        {"class": "Server", "serial_number": "SRV-2001", "hostname": "db-01", "environment": "staging"}]}))
    before = store.stats()
    plans = run_import(store, "servers.csv", dry_run=True).report.plans  # type: ignore[attr-defined]
    assert store.stats() == before
    items = [(lines, item) for lines, plan in plans for item in plan.items]
    actions = sorted(item.action for _, item in items)
    assert actions == ["create"] * 5 + ["update"]
    lines, db = next((lines, i) for lines, i in items if i.action == "update")
    assert lines[db.items[0]] == "line 4"
    assert db.matched_by == ["serial_number=srv-2001"]
    assert [(c.attr, c.old, c.new, c.winner) for c in db.changes] == [
        ("description", None, "installed 2023-11-15", "import:assets"),
        ("ip_addresses", None, ["10.20.1.21"], "import:assets")]
    assert [(c.attr, c.old, c.offered, c.winner) for c in db.kept] == [
        ("environment", "staging", "production", "ssh")]


def test_one_bad_row_writes_nothing_and_skip_invalid_writes_the_rest(store: GraphStore, tmp_path: Path) -> None:
    with pytest.raises(RowsRejectedError) as exc:
        run_import(store, "bad_rows.csv")
    assert exc.value.count == 4
    assert f"{DATA / 'bad_rows.csv'}:3: ips: expected an IP address, got '10.9.0.999'" in str(exc.value)
    assert "nothing was written" in str(exc.value)
    assert store.stats()["cis"] == 0 and store.stats()["runs"] == 0
    rejects = tmp_path / "rejects.csv"
    report = run_import(store, "bad_rows.csv", rejects=rejects).report  # type: ignore[attr-defined]
    assert report.rejected == 4 and report.totals["created"] == 3  # good-01, good-02, a@example.com
    lines = rejects.read_text().splitlines()
    assert lines[0] == "line,reason,hostname,serial,ips,env,tier_note,owner_email,installed"
    assert lines[1] == ("3,\"ips: expected an IP address, got '10.9.0.999'\",bad-ip,SRV-9002,10.9.0.999,production,,,"
                        "01/01/2024")
    assert len(lines) == 5


def test_batches_of_a_large_file_are_each_written(store: GraphStore, tmp_path: Path) -> None:
    src = tmp_path / "many.csv"
    with src.open("w") as fh:
        fh.write("hostname,serial,ips,env,tier_note,owner_email,installed\n")
        for i in range(23):
            fh.write(f"h{i},S{i},,test,,o{i % 3}@example.com,01/01/2024\n")
    mapping = load_mapping(DATA / "servers.map.yaml", default_schema())
    mapping.spec.batch_size = 10
    report = TableImport(store, src, mapping).run()
    assert len(report.run_ids) == 3 and report.totals["created"] == 26
    assert store.stats()["cis"] == 26 and len(store.relationships(type="OWNED_BY")) == 23
    shutil.copy(src, tmp_path / "again.csv")
    again = TableImport(store, tmp_path / "again.csv", mapping).run()
    assert again.totals["events"] == 0


def test_json_rows_with_unknown_keys_are_rejected_to_json_lines(store: GraphStore, tmp_path: Path) -> None:
    src = tmp_path / "rows.json"
    src.write_text('[{"hostname": "a-1", "serial": "SA1", "env": "test"},\n'
                   ' {"hostname": "a-2", "serial": "SA2", "colour": "blue"},\n'
                   ' "not a row"]\n')
    rejects = tmp_path / "rejects.jsonl"
    report = TableImport(store, src, load_mapping(DATA / "servers.map.yaml", default_schema())).run(rejects=rejects)
    assert report.totals["created"] == 1 and report.rejected == 2
    import json

    bad = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert bad == [{"line": 2, "reason": "colour: not in the mapping; map it or list it under ignore",
                    "hostname": "a-2", "serial": "SA2", "colour": "blue"},
                   {"line": 3, "reason": "(row): expected an object, got str"}]


def test_dry_run_of_a_large_file_counts_everything_and_keeps_a_bounded_detail(
        store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importers.table_import as table_import

    monkeypatch.setattr(table_import, "DRY_RUN_DETAIL", 5)
    src = tmp_path / "many.csv"
    with src.open("w") as fh:
        fh.write("hostname,serial,ips,env,tier_note,owner_email,installed\n")
        for i in range(23):
            fh.write(f"h{i},S{i},,test,,o{i % 3}@example.com,01/01/2024\n")
    mapping = load_mapping(DATA / "servers.map.yaml", default_schema())
    mapping.spec.batch_size = 10
    report = TableImport(store, src, mapping).run(dry_run=True)
    assert report.planned["create"] == 23 + 3 * 3  # the owners are planned once per batch (none is written)
    assert report.planned["rels_created"] == 23
    assert sum(len(p.items) for _, p in report.plans) == 13 and report.omitted == 19
    assert store.stats()["cis"] == 0
