"""Incident and change records: related incidents, maintenance, conflicts, freezes, history as risk.

Store-agnostic ``check_*`` functions (reused by tests/contract), worked out by hand on the sample
estate loaded as of 2026-11-20:

* INC1 (open) touches fraud-fra-01, Payments and Checkout. An incident on sw-acc-fra-3 hits
  fraud-fra-01 (hv-fra-03 is on sw-acc-fra-3) and both services -> INC1 is a related open incident.
* CHG1 (approved, 2026-11-24 22:00-23:00) is on lb-fra-1. An incident on lb-fra-1 at 22:30 that day
  finds lb-fra-1 "in maintenance" under CHG1.
* A change to lb-fra-2 at 22:15-22:45 overlaps CHG1 on lb-fra-1, the other member of lb-fra-ha:
  alone, lb-fra-2 only degrades lb-fra-ha (no service down); with lb-fra-1 also down lb-fra-ha is
  down, so together they take Checkout, Payments, Single Sign-On (tier 1), Customer Portal (2),
  Build and Deploy (3) and Internal Wiki (4) down -> conflict, +2.  lb-fra-2's own window is "4th Tue
  22:00-23:00 UTC" (fits), lb-fra-ha has no spare (+1), six services (+1) -> score 4, high.
* The freeze "Black Friday" (2026-11-26 .. 2026-11-30): the same change on 2026-11-27 22:00 is in it
  (+2, and outside lb-fra-2's window, 2026-11-27 being a Friday: +1).
* CHG0 on fraud-fra-01 failed on 2026-11-10 and INC1 touches it: a change to fraud-fra-01 on
  2026-11-24 gets both as risk reasons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore
from cmdb.store.sqlite import SqliteStore
from impact.change import analyse_change
from impact.incident import analyse_incident
from impact.records import record_change, record_freeze, record_incident, records_on
from tests.unit.test_impact_sample import SAMPLE, ci

LOADED_AT = datetime(2026, 11, 20, tzinfo=UTC)
LB_FRA_HA_DOWN = ["Checkout (tier 1)", "Payments (tier 1)", "Single Sign-On (tier 1)", "Customer Portal (tier 2)",
                  "Build and Deploy (tier 3)", "Internal Wiki (tier 4)"]


def service(store: GraphStore, name: str) -> str:
    """The Service called ``name`` (the Payments team shares the Payments service's name)."""
    (sid,) = [i for i, c in store.get_cis(store.find_by_name(name)).items() if c.cls == "Service"]
    return sid


def check_records(store: GraphStore) -> None:
    ingest(store, Batch.from_file(SAMPLE), now=LOADED_AT)
    fraud, lb1 = ci(store, "fraud-fra-01"), ci(store, "lb-fra-1")
    inc = record_incident(store, "INC1", [fraud, service(store, "Payments"), service(store, "Checkout")],
                          "2026-11-20T08:00:00Z")
    record_change(store, "CHG1", [lb1], "2026-11-24T22:00:00Z", "2026-11-24T23:00:00Z", state="approved")
    record_change(store, "CHG0", [fraud], "2026-11-10T22:00:00Z", "2026-11-10T23:00:00Z", state="failed")
    record_freeze(store, "Black Friday", "2026-11-26T00:00:00Z", "2026-11-30T23:59:59Z")
    assert [r.key for r in records_on(store, [fraud])] == ["CHG0", "INC1"]
    # re-recording updates the same record (identity is the key)
    assert record_incident(store, "INC1", [fraud], "2026-11-20T08:00:00Z", summary="fraud scoring slow") == inc

    rep = analyse_incident(store, ["sw-acc-fra-3"], as_of="2026-11-21T00:00:00Z")
    assert [r.key for r in rep.related_incidents] == ["INC1"]
    assert rep.in_maintenance == {}

    rep = analyse_incident(store, ["lb-fra-1"], as_of="2026-11-24T22:30:00Z")
    assert rep.in_maintenance == {lb1: "CHG1"}
    assert [r.key for r in rep.change_records] == ["CHG1"]

    ch = analyse_change(store, ["lb-fra-2"], "2026-11-24T22:15:00Z", "2026-11-24T22:45:00Z")
    assert ch.conflicts == ["change CHG1 (approved, 2026-11-24T22:00:00Z - 2026-11-24T23:00:00Z) touches CIs at "
                            "risk or their redundancy partners: lb-fra-1"]
    assert ch.reasons[-1] == "overlaps change CHG1; together they would take down " + ", ".join(LB_FRA_HA_DOWN)
    assert (ch.risk, ch.score) == ("high", 4)

    ch = analyse_change(store, ["lb-fra-2"], "2026-11-27T22:00:00Z", "2026-11-27T22:30:00Z")
    assert "freeze period Black Friday (2026-11-26T00:00:00Z - 2026-11-30T23:59:59Z)" in ch.conflicts
    assert "inside the freeze period Black Friday" in ch.reasons
    assert ch.score == 5  # no spare (1) + six services (1) + outside window (1) + freeze (2)

    ch = analyse_change(store, ["fraud-fra-01"], "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z")
    assert ch.reasons[-2:] == ["change CHG0 on the same CIs failed within 30 days",
                               "incident INC1 on the same CIs within 30 days"]


def test_records(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "records.db")
    try:
        check_records(store)
    finally:
        store.close()
