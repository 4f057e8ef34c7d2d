"""The discovery run on every store: per-target outcomes, isolation of bad targets, run records."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cmdb.batch import Batch, CIRecord
from cmdb.store.base import GraphStore, SearchQuery
from discovery.collector import Observed, OutcomeTable
from discovery.observations import Device, Interface
from discovery.outcomes import Outcome, TargetError, TargetResult
from discovery.runner import run_discovery


class ScriptedCollector:
    """A collector whose targets behave as their names say; the run under test is real."""

    method = "test"
    source = "snmp"
    profile_attr = "snmp_profile"
    outcomes: OutcomeTable = ()

    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.remembered: dict[str, str | None] = {}

    async def read(self, target: str, remembered_profile: str | None) -> str:
        self.remembered[target] = remembered_profile
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0.02)
            if target == "auth-fail":
                raise TargetError(Outcome.AUTH_FAILED, "auth-fail: every profile was refused (tried: lab)")
            if target == "slow":
                await asyncio.sleep(20)
            if target == "crash":
                raise RuntimeError("collector bug")
            return target
        finally:
            self.active -= 1

    def transform(self, target: str) -> Observed:
        if target.startswith("10.9.0."):
            n = target.rsplit(".", 1)[1]
            return Observed([Device("Switch", hostname=f"sw{n}", management_ip=target, extra={"snmp_profile": "lab"}),
                             Interface("Gi0/1")], f"{target}/32", True, profile="lab")
        if target == "bad-batch":
            return Observed([Device("Toaster", extra={"name": "t"})], None, False)
        return Observed(None, None, False)

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        ok = sorted(r.target for r in results if r.outcome == Outcome.OK and r.batch is not None)
        return [Batch(source="snmp", scope="run", cis=[
            CIRecord("Service", {"name": "lab network", "service_type": "technical", "tier": 3})])] if ok else []


def test_one_bad_target_never_stops_the_run(store: GraphStore) -> None:
    targets = ["10.9.0.1", "auth-fail", "slow", "crash", "bad-batch", "10.9.0.2", "quiet"]
    collector = ScriptedCollector()
    record = asyncio.run(run_discovery(collector, targets, store, concurrency=3, target_timeout=2.0,
                                       options={"profiles": ["lab"]}))
    outcomes = {o["target"]: o["outcome"] for o in record.outcomes}
    assert [o["target"] for o in record.outcomes] == targets
    assert outcomes == {"10.9.0.1": "ok", "auth-fail": "auth_failed", "slow": "timeout", "crash": "error",
                        "bad-batch": "rejected", "10.9.0.2": "ok", "quiet": "ok"}
    detail = {o["target"]: o["detail"] for o in record.outcomes}
    assert "Toaster" in detail["bad-batch"] and "collector bug" in detail["crash"]
    assert collector.max_active <= 3
    assert record.counts() == {"ok": 3, "auth_failed": 1, "timeout": 1, "error": 1, "rejected": 1}
    assert record.ended_at and record.options["run_level_batches"][0]["outcome"] == "ok"

    found = store.search(SearchQuery(classes=["Switch", "Interface", "Service"], limit=10)).items
    # the interface name spelt long, as every method spells it (discovery.names, applied by to_batch)
    assert sorted(c.name for c in found) == ["lab network", "sw1", "sw1 GigabitEthernet0/1", "sw2",
                                             "sw2 GigabitEthernet0/1"]
    assert store.search(SearchQuery(text="t", classes=["Application"])).total == 0

    saved = store.get_discovery_run(record.run_id)
    assert saved == record
    assert [r.run_id for r in store.discovery_runs(method="test")] == [record.run_id]
    ledger = {r.run_id for r in store.runs("snmp", 50)}
    assert len(ledger) == 3 and all(r.startswith(record.run_id + "/") for r in ledger)  # the rejected batch: none

    # The second run starts with the profile that worked on each device, and changes nothing.
    again = ScriptedCollector()
    second = asyncio.run(run_discovery(again, ["10.9.0.1", "10.9.0.2"], store, concurrency=2))
    assert again.remembered == {"10.9.0.1": "lab", "10.9.0.2": "lab"}
    assert [o["changes"] for o in second.outcomes] == [0, 0]
    assert [r.run_id for r in store.discovery_runs(limit=1)] == [second.run_id]


def test_concurrency_must_be_positive(store: GraphStore) -> None:
    with pytest.raises(Exception, match="at least 1"):
        asyncio.run(run_discovery(ScriptedCollector(), ["quiet"], store, concurrency=0))
