"""The runner's rule for a partial reading: its batch (``complete: false``) is ingested although the
target's outcome is not ``ok``, refreshing what it saw and ageing nothing; a read that fails outright
writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.identity import identity_keys
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.store.sqlite import SqliteStore
from discovery.collector import Observed, OutcomeTable, PartialReading
from discovery.observations import CloudResource
from discovery.outcomes import Outcome, TargetResult
from discovery.runner import run_discovery

QUICK = ReconcileConfig(stale_after_runs=1, retire_after_runs=3)  # one complete miss would make a CI stale


class Refused(Exception):
    """What the replayed API raises for a call the credentials may not make."""


class Replayed:
    """Teams read from a list; ``denied`` names the teams whose call fails (a partial reading), and
    ``down`` fails the whole read."""

    method = "replay"
    source = "replay"
    profile_attr: str | None = None
    outcomes: OutcomeTable = ((Refused, Outcome.DENIED),)

    def __init__(self, teams: dict[str, str], denied: Sequence[str] = (), down: bool = False) -> None:
        self.teams, self.denied, self.down = teams, set(denied), down

    async def read(self, target: str, remembered_profile: str | None) -> dict[str, Any]:
        if self.down:
            raise Refused("everything denied")
        raw = {"teams": {k: v for k, v in self.teams.items() if k not in self.denied}, "failed": sorted(self.denied)}
        if self.denied:
            raise PartialReading(raw, Refused(f"denied: {', '.join(sorted(self.denied))}"))
        return raw

    def transform(self, raw: dict[str, Any]) -> Observed:
        facts = [CloudResource("Team", ("name", name), {"name": name, "description": text})
                 for name, text in sorted(raw["teams"].items())]
        return Observed(list(facts), "replay:teams", complete=not raw["failed"], detail="")

    def finish(self, results: Sequence[TargetResult], run_id: str) -> list[Batch]:
        return []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cmdb.db")
    try:
        yield s
    finally:
        s.close()


def run(store: SqliteStore, collector: Replayed) -> dict[str, Any]:
    record = asyncio.run(run_discovery(collector, ["teams"], store, config=QUICK))
    return record.outcomes[0]


def team(store: SqliteStore, name: str) -> Any:
    ci_id = store.find_by_key(next(iter(identity_keys(default_schema(), "Team", {"name": name}))))
    assert ci_id is not None, name
    return store.get_ci(ci_id)


def test_a_partial_reading_is_ingested_and_ages_nothing(store: SqliteStore) -> None:
    first = run(store, Replayed({"web": "v1", "db": "v1"}))
    assert first["outcome"] == "ok" and first["items"] == 2
    seen = run(store, Replayed({"web": "v2", "db": "v2"}, denied=["db"]))
    assert seen["outcome"] == "denied" and "denied: db" in seen["detail"]
    assert seen["items"] == 1 and seen["changes"] >= 1  # the batch was written although the outcome is not ok
    assert team(store, "web").attrs["description"] == "v2"  # what it saw is refreshed
    db = team(store, "db")
    assert db.attrs["description"] == "v1" and db.status == "active"  # what it did not see has not aged
    runs = store.runs("replay", 10)
    assert [r.complete for r in runs if r.scope == "replay:teams"].count(False) == 1


def test_a_failed_read_writes_nothing(store: SqliteStore) -> None:
    run(store, Replayed({"web": "v1"}))
    failed = run(store, Replayed({"web": "v2"}, down=True))
    assert failed["outcome"] == "denied" and failed["items"] == 0
    assert team(store, "web").attrs["description"] == "v1"


def test_a_complete_miss_does_age(store: SqliteStore) -> None:
    """The control: without the partial flag the same miss makes the CI stale (the test above can fail)."""
    run(store, Replayed({"web": "v1", "db": "v1"}))
    run(store, Replayed({"web": "v2"}))
    assert team(store, "db").status == "stale"
