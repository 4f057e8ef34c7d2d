"""``GET /relationships/{id}/provenance`` and the batch summary's new counts, through FastAPI's TestClient.

A relationship's attributes with every source's value, when that source last saw it and which value is
current; a relationship with an end the token may not see answers exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import rel_id_for
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import TokenFor

V1 = "/api/v1"


def linked(source: str, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"source": source, "cis": [
        {"ref": "a", "class": "Server", "hostname": "rp-1", "serial_number": "RP-1"},
        {"ref": "b", "class": "Switch", "hostname": "rp-sw", "serial_number": "RP-SW"},
        {"ref": "h", "class": "Server", "hostname": "rp-hidden", "serial_number": "RP-H", "partition": "secret"}],
        "relationships": [{"type": "CONNECTED_TO", "from": "a", "to": "b", "attributes": attrs},
                          {"type": "CONNECTED_TO", "from": "h", "to": "b", "attributes": attrs}]}


def ids(store: SqliteStore) -> tuple[str, str, str]:
    found = [store.find_by_key(f"device:serial_number={s}") for s in ("rp-1", "rp-sw", "rp-h")]
    assert all(found)
    return found[0] or "", found[1] or "", found[2] or ""


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def test_relationship_provenance_shows_every_source_and_the_current_one(client: TestClient,
                                                                        sample_store: SqliteStore) -> None:
    ingest(sample_store, Batch.from_dict(linked("snmp", {"port": "Gi0/1"})))
    ingest(sample_store, Batch.from_dict(linked("scan", {"port": "eth0", "vlan": 12})))
    a, b, _ = ids(sample_store)
    rel_id = rel_id_for("CONNECTED_TO", a, b)
    listed = client.get(f"{V1}/cis/{a}/relationships").json()
    assert rel_id in {r["id"] for r in listed}  # the id a client finds next to the CI
    r = client.get(f"{V1}/relationships/{rel_id}/provenance")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["type"], body["from"], body["to"], body["status"]) == (rel_id, "CONNECTED_TO", a, b,
                                                                                      "active")
    port = body["attributes"]["port"]
    assert (port["value"], port["source"]) == ("Gi0/1", "snmp")
    assert [(s["source"], s["value"], s["current"]) for s in port["sources"]] == [
        ("snmp", "Gi0/1", True), ("scan", "eth0", False)]
    assert all(s["last_seen"] and s["set_at"] and s["run_id"] for s in port["sources"])
    assert body["attributes"]["vlan"]["source"] == "scan"
    assert {s["source"] for s in body["sightings"]} == {"snmp", "scan"}


def test_missing_and_hidden_relationships_are_the_same_404(client: TestClient, sample_store: SqliteStore,
                                                           token_for: TokenFor) -> None:
    ingest(sample_store, Batch.from_dict(linked("snmp", {"port": "Gi0/1"})))
    a, b, hidden = ids(sample_store)
    limited = {"Authorization": f"Bearer {token_for('viewer', partitions=['default'])}"}
    seen = client.get(f"{V1}/relationships/{rel_id_for('CONNECTED_TO', a, b)}/provenance", headers=limited)
    assert seen.status_code == 200, seen.text
    hidden_id = rel_id_for("CONNECTED_TO", hidden, b)
    assert client.get(f"{V1}/relationships/{hidden_id}/provenance").status_code == 200  # admin sees it
    gone = problem(client.get(f"{V1}/relationships/{hidden_id}/provenance", headers=limited), 404)
    missing = problem(client.get(f"{V1}/relationships/rel-nosuch/provenance", headers=limited), 404)
    assert gone["detail"].replace(hidden_id, "X") == missing["detail"].replace("rel-nosuch", "X")
    assert "secret" not in gone["detail"] and hidden not in gone["detail"]


def test_the_batch_summary_counts_merges_ageing_and_closed_conflicts(client: TestClient) -> None:
    client.post(f"{V1}/batches", json={"source": "import", "cis": [
        {"class": "Server", "fqdn": "sum-1.example.com"}]}).raise_for_status()
    client.post(f"{V1}/batches", json={"source": "ssh", "cis": [
        {"class": "Server", "mac_addresses": ["02:00:5e:00:aa:01"]}]}).raise_for_status()
    r = client.post(f"{V1}/batches", json={"source": "ssh", "cis": [
        {"class": "Server", "fqdn": "sum-1.example.com", "mac_addresses": ["02:00:5e:00:aa:01"]}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["merged"] == 1 and body["conflicts"] == 0 and body["updated"] == 1
    assert {"keys_retired", "attrs_dropped", "rel_attrs_dropped", "conflicts_closed"} <= body.keys()
    schema = client.get(f"{V1}/openapi.json").json()["components"]["schemas"]
    summary = schema["BatchSummary"]
    assert {"merged", "keys_retired", "attrs_dropped", "rel_attrs_dropped", "conflicts_closed"} <= set(
        summary["properties"])
    assert "merged" in summary["examples"][0]
    assert "RelProvenanceOut" in schema
