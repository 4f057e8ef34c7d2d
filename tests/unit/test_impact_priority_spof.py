"""Priority matrix, single points of failure and the ``cmdb impact`` commands on the sample estate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdb.errors import BadInputError, ConfigError
from cmdb.store.sqlite import SqliteStore
from impact.engine import AffectedService
from impact.index import MemoryIndex
from impact.priority import PriorityMatrix
from impact.spof import single_points_of_failure
from impact.states import State
from product.cli import app
from tests.unit.test_impact_sample import load_sample


def svc(tier: int, state: State, name: str = "S") -> AffectedService:
    return AffectedService(f"id-{name}", name, tier, state, (), ())


@pytest.mark.parametrize(
    ("services", "urgency", "expected"),
    [
        ([svc(1, State.DOWN)], "high", ("P1", "high")),
        ([svc(1, State.DOWN)], "medium", ("P2", "high")),
        ([svc(1, State.DOWN)], "low", ("P3", "high")),
        ([svc(1, State.DEGRADED)], "high", ("P2", "medium")),
        ([svc(2, State.DOWN)], "medium", ("P3", "medium")),
        ([svc(2, State.DEGRADED)], "low", ("P5", "low")),
        ([svc(4, State.DOWN)], "high", ("P3", "low")),
        ([], "high", ("P3", "low")),
        # the worst service decides, whatever the order
        ([svc(3, State.DOWN, "a"), svc(2, State.DEGRADED, "b"), svc(1, State.DOWN, "c")], "low", ("P3", "high")),
    ],
)
def test_default_matrix(services: list[AffectedService], urgency: str, expected: tuple[str, str]) -> None:
    p = PriorityMatrix().priority(services, urgency)
    assert (p.priority, p.impact) == expected


def test_matrix_reason_names_the_worst_service() -> None:
    p = PriorityMatrix().priority([svc(2, State.DOWN, "Portal"), svc(1, State.DEGRADED, "Checkout")], "high")
    assert p.reason == "tier-2 service Portal is down" and p.priority == "P2"


def test_custom_matrix_file(tmp_path: Path) -> None:
    f = tmp_path / "matrix.yaml"
    f.write_text(
        "levels: [critical, normal]\n"
        "matrix: {critical: {critical: SEV1, normal: SEV2}, normal: {critical: SEV2, normal: SEV3}}\n"
        "impact_levels: {'1': {down: critical, degraded: critical}, default: normal}\n"
    )
    pm = PriorityMatrix.load(f)
    assert pm.priority([svc(1, State.DEGRADED)], "normal").priority == "SEV2"
    assert pm.priority([svc(2, State.DOWN)], "normal").priority == "SEV3"
    with pytest.raises(BadInputError, match="urgency"):
        pm.priority([], "high")


def test_bad_matrix_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "matrix.yaml"
    f.write_text("matrix: {high: {high: P1}}\n")
    with pytest.raises(ConfigError, match="lacks urgency"):
        PriorityMatrix.load(f)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("impact-cli") / "sample.db"
    store = SqliteStore(path)
    load_sample(store)
    store.close()
    yield path


def test_spof_on_sample(sample_db: Path) -> None:
    """The deliberate single points of failure of the sample, worked out by hand.

    Tier 1 (Checkout, Payments, Single Sign-On):
    * fraud-check RUNS_ON fraud-fra-01 (one VM) HOSTED_ON hv-fra-03 CONNECTED_TO sw-acc-fra-3, in
      dc-fra-rack-a3: any of them down -> payment-gateway down -> Payments and Checkout down;
    * cert-shop (shop.example.com) is used by both lb-fra-1 and lb-fra-2: one expiry takes the whole
      HA pair (a common cause, not two failures) and every FRA pool behind it;
    * dc-fra-rack-n1 holds both cores, both firewalls, both routers and both load balancers;
    * the applications themselves (auth-sso, directory, payment-gateway, checkout-api ...) are single.
    Not SPOFs: one core switch, one load balancer, one pool member, one hypervisor other than
    hv-fra-03 (hv-fra-01 only takes the wiki, tier 4), the orders database primary (replicas), the
    redundancy groups themselves (left out unless asked).
    """
    store = SqliteStore(sample_db)
    try:
        found = {s.name: s for s in single_points_of_failure(MemoryIndex.from_store(store), 1)}
    finally:
        store.close()
    for name in ("fraud-fra-01", "hv-fra-03", "sw-acc-fra-3", "dc-fra-rack-a3", "fraud-check"):
        assert {n for n, _t, _p in found[name].services} == {"Payments", "Checkout"}, name
    assert {n for n, _t, _p in found["shop.example.com"].services} == {"Checkout", "Payments", "Single Sign-On"}
    assert {"dc-fra", "dc-fra-room-1", "dc-fra-rack-n1", "auth-sso", "directory", "payment-gateway",
            "checkout-api", "storefront-web"} <= set(found)
    for name in ("sw-core-fra-1", "lb-fra-1", "web-fra-01", "pay-fra-01", "hv-fra-01", "orders-db-fra-01",
                 "db-fra-03", "lb-fra-ha", "pool-payments-fra", "Checkout", "dc-ams"):
        assert name not in found, name
    paths = {n: " -> ".join(p) for n, _t, p in found["fraud-fra-01"].services}
    assert paths["Payments"] == "fraud-fra-01 -> fraud-check -> payment-gateway -> Payments"


def cli(db: Path, *args: str) -> str:
    res = CliRunner().invoke(app, ["--store", f"sqlite:///{db}", *args], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return res.output


def test_cli_incident_json(sample_db: Path) -> None:
    data = json.loads(cli(sample_db, "impact", "incident", "pay-fra-01", "pay-fra-02", "--urgency", "high", "--json"))
    assert data["priority"]["priority"] == "P1"
    assert [(s["name"], s["state"], s["tier"]) for s in data["services"]] == [
        ("Checkout", "down", 1), ("Payments", "down", 1)]
    assert data["services"][1]["path"] == ["pay-fra-01", "pool-payments-fra", "payment-gateway", "Payments"]
    grace = next(s for s in data["stakeholders"] if s["name"] == "Grace Mueller")
    assert grace["roles"] == ["service_owner"] and grace["contact"]["email"] == "grace.mueller@example.com"


def test_cli_incident_degraded_table(sample_db: Path) -> None:
    text = cli(sample_db, "impact", "incident", "orders-db-fra-01", "--mode", "degraded", "--urgency", "low")
    # degraded input -> everything degraded; tier-1 degraded = medium impact, low urgency -> P4
    assert "P4" in text and "orders-db-fra-01 -> orders-db-rs -> checkout-api -> Checkout" in text
    assert "Eva Lindqvist" in text


def test_cli_incident_as_of_before_the_estate_existed(sample_db: Path) -> None:
    res = CliRunner().invoke(app, ["--store", f"sqlite:///{sample_db}", "impact", "incident", "web-fra-01",
                                   "--as-of", "2000-01-01T00:00:00Z"])
    assert res.exit_code != 0


def test_cli_incident_as_of_now_matches_live(sample_db: Path) -> None:
    live = json.loads(cli(sample_db, "impact", "incident", "shop.example.com", "--json"))
    past = json.loads(cli(sample_db, "impact", "incident", "shop.example.com", "--as-of", "2100-01-01T00:00:00Z",
                          "--json"))
    assert [(s["name"], s["state"], s["path"]) for s in live["services"]] == [
        (s["name"], s["state"], s["path"]) for s in past["services"]]


def test_cli_spof(sample_db: Path) -> None:
    text = cli(sample_db, "impact", "spof", "--tier", "1")
    assert "fraud-fra-01" in text and "shop.example.com" in text
    data = json.loads(cli(sample_db, "impact", "spof", "--tier", "2", "--json"))["items"]
    assert "erp-ams-01" in {s["name"] for s in data}  # the single ERP box, Order Fulfilment (tier 2)


def test_cli_incident_notification_drafts(sample_db: Path) -> None:
    """pay-fra-01/-02 run on hv-fra-01/-02, in dc-fra-rack-a1/-a2 of dc-fra-room-1 in dc-fra."""
    data = json.loads(cli(sample_db, "impact", "incident", "pay-fra-01", "pay-fra-02", "--notify",
                          "--workaround", "route card payments to the AMS gateway", "--json"))
    notes = {n["role"]: n for n in data["notifications"]}
    assert list(notes) == ["service_owner", "change_approver", "owner", "support", "subscriber"]
    owners = notes["service_owner"]
    assert owners["to"] == ["Farid Haddad <farid.haddad@example.com>", "Grace Mueller <grace.mueller@example.com>"]
    assert owners["subject"] == "[DOWN] Incident: pay-fra-01, pay-fra-02 down: Checkout (tier 1)"
    assert "Where: dc-fra, dc-fra-rack-a1, dc-fra-rack-a2, dc-fra-room-1." in owners["body"]
    assert "Workaround: route card payments to the AMS gateway." in owners["body"]
    assert "Why you: service owner of Checkout, Payments." in owners["body"]


def test_cli_change_html_and_markdown(sample_db: Path) -> None:
    args = ["impact", "change", "--ci", "lb-fra-1", "--start", "2026-11-24T22:00Z", "--end", "2026-11-24T22:30Z"]
    page = cli(sample_db, *args, "--html")
    assert page.startswith("<!doctype html>") and "<strong>medium</strong>" in page
    assert "Anna Keller (lb-fra-ha)" in page
    md = cli(sample_db, *args, "--markdown")
    assert md.startswith("# Change impact: lb-fra-1") and "- Risk: **medium** (score 2)" in md


def test_cli_records_and_expiry(tmp_path: Path, sample_db: Path) -> None:
    db = tmp_path / "copy.db"
    db.write_bytes(sample_db.read_bytes())
    cli(db, "impact", "record", "incident", "OPS-7", "--ci", "fraud-fra-01", "--opened", "2026-11-21T09:00Z")
    data = json.loads(cli(db, "impact", "incident", "hv-fra-03", "--json"))
    assert [r["key"] for r in data["related_incidents"]] == ["OPS-7"]
    cli(db, "impact", "record", "freeze", "Year end", "--start", "2026-12-20T00:00Z", "--end", "2027-01-02T00:00Z")
    ch = json.loads(cli(db, "impact", "change", "--ci", "wiki-fra-01", "--start", "2026-12-21T10:00Z", "--end",
                        "2026-12-21T11:00Z", "--json", "--record", "CHG-9"))
    assert ch["conflicts"] == ["freeze period Year end (2026-12-20T00:00:00Z - 2027-01-02T00:00:00Z)"]
    exp = json.loads(cli(db, "impact", "expiry", "--at", "2026-11-22T00:00Z", "--json"))
    assert [e["name"] for e in exp["expiring"]] == ["grafana-enterprise", "wiki.corp.example.com"]
    assert [(s["name"], s["state"]) for s in exp["services"]] == [("Monitoring", "degraded"),
                                                                  ("Internal Wiki", "down")]
