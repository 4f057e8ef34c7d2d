"""Change analysis on the sample estate: risk with its reasons, window conflicts, approvers.

Worked out by hand from ``cmdb/sample/estate.yaml``:

* lb-fra-1 (maintenance window "4th Tue 22:00-23:00 UTC"; 2026-11-24 is the 4th Tuesday of November)
  down in the worst case: lb-fra-ha (ha_pair, quorum 1) keeps 1 of 2 -> degraded with no spare
  (+1); the four FRA pools depend on lb-fra-ha -> degraded -> storefront-web, checkout-api,
  payment-gateway, auth-sso and through auth-sso customer-portal, jenkins, wiki degraded: six services
  (Checkout, Payments, Single Sign-On, Customer Portal, Build and Deploy, Internal Wiki), none down
  (>= 5 services: +1).  Score 2 -> medium.  Approvers: Anna Keller (lb-fra-ha), Nils Schmidt (the
  tier 1-2 services), Platform (Internal Wiki), Developer Experience (Build and Deploy).
* The same change at 10:00 is outside the window: a conflict and +1 -> 3, medium; as an emergency
  +1 more -> 4, high.
* fraud-fra-01 (no maintenance window) as a standard change: fraud-check runs only there ->
  payment-gateway down -> Payments and Checkout down (tier 1: 3) and a standard change touching tier
  1 (+1) -> 4, high.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cmdb.errors import BadInputError
from cmdb.store.sqlite import SqliteStore
from impact.change import analyse_change, change_dict, change_markdown, within_window
from tests.unit.test_impact_sample import load_sample


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path_factory.mktemp("change") / "sample.db")
    load_sample(s)
    yield s
    s.close()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_windows() -> None:
    assert within_window("4th Tue 22:00-23:00 UTC", utc("2026-11-24T22:00"), utc("2026-11-24T22:59"))
    assert not within_window("4th Tue 22:00-23:00 UTC", utc("2026-11-17T22:00"), utc("2026-11-17T22:30"))  # 3rd
    assert not within_window("4th Tue 22:00-23:00 UTC", utc("2026-11-24T22:30"), utc("2026-11-24T23:30"))
    assert within_window("Sat 23:00-02:00", utc("2026-11-29T00:30"), utc("2026-11-29T01:30"))  # Sunday morning
    assert within_window("Sun 02:00-04:00 UTC", utc("2026-11-22T02:00"), utc("2026-11-22T04:00"))
    with pytest.raises(BadInputError, match="maintenance window"):
        within_window("whenever", utc("2026-11-22T02:00"), utc("2026-11-22T03:00"))


def test_load_balancer_in_window(store: SqliteStore) -> None:
    rep = analyse_change(store, ["lb-fra-1"], "2026-11-24T22:00:00Z", "2026-11-24T22:45:00Z")
    assert (rep.risk, rep.score, rep.conflicts) == ("medium", 2, [])
    assert rep.reasons == ["no redundancy left during the change in lb-fra-ha (1 of 2 needed)", "6 services affected"]
    d = change_dict(rep)
    assert [(s["name"], s["worst_case"]) for s in d["services"]] == [
        ("Checkout", "degraded"), ("Payments", "degraded"), ("Single Sign-On", "degraded"),
        ("Customer Portal", "degraded"), ("Build and Deploy", "degraded"), ("Internal Wiki", "degraded")]
    assert {a["name"]: a["for"] for a in d["approvers"]} == {
        "Anna Keller": ["lb-fra-ha"],
        "Nils Schmidt": ["Checkout", "Customer Portal", "Payments", "Single Sign-On"],
        "Platform": ["Internal Wiki"],
        "Developer Experience": ["Build and Deploy"],
    }


def test_load_balancer_outside_window_and_emergency(store: SqliteStore) -> None:
    rep = analyse_change(store, ["lb-fra-1"], "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z")
    assert (rep.risk, rep.score) == ("medium", 3)
    assert rep.conflicts == ["lb-fra-1: the window 2026-11-24T10:00:00Z - 2026-11-24T11:00:00Z is outside its "
                             "maintenance window (4th Tue 22:00-23:00 UTC)"]
    rep = analyse_change(store, ["lb-fra-1"], "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z", "emergency")
    assert (rep.risk, rep.score) == ("high", 4)


def test_single_instance_standard_change(store: SqliteStore) -> None:
    rep = analyse_change(store, ["fraud-fra-01"], "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z", "standard")
    assert (rep.risk, rep.score, rep.conflicts) == ("high", 4, [])
    assert rep.reasons == [
        "tier-1 service Checkout would be down (fraud-fra-01 -> fraud-check -> payment-gateway -> checkout-api -> "
        "Checkout)",
        "tier-1 service Payments would be down (fraud-fra-01 -> fraud-check -> payment-gateway -> Payments)",
        "a standard (pre-approved) change should not put a tier-1 service at risk",
    ]
    md = change_markdown(rep)
    assert "Risk: **high**" in md and "| 1 | Payments | down |" in md


def test_bad_change_input(store: SqliteStore) -> None:
    with pytest.raises(BadInputError, match="change type"):
        analyse_change(store, ["lb-fra-1"], "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z", "yolo")
    with pytest.raises(BadInputError, match="before it starts"):
        analyse_change(store, ["lb-fra-1"], "2026-11-24T11:00:00Z", "2026-11-24T10:00:00Z")


