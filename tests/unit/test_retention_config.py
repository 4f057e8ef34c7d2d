"""The ``retention:`` section: ages with units, ``never``, the idempotency-key floor, the schedule; and the
scheduler's prune job (configured, or added by itself) pruning a real store on its clock."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmdb.config import check_config
from cmdb.errors import ConfigError
from cmdb.retention import RetentionSettings, load_retention, parse_age
from cmdb.store.jobs import JobRecord
from cmdb.store.sqlite import SqliteStore
from impact.automation_config import parse_config
from impact.scheduler import Scheduler
from product.config_sections import register

register()  # the wings' sections, as the composition root does
NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CMDB__") or name == "CMDB_CONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_defaults_and_ages() -> None:
    s = RetentionSettings()
    assert (s.jobs, s.idempotency_keys, s.outbox, s.health_snapshots, s.discovery_runs) == (
        "30d", "7d", "90d", "365d", "365d")
    assert s.age("idempotency_keys") == timedelta(days=7) and s.schedule == "30 3 * * *"
    assert parse_age("12h") == timedelta(hours=12) and parse_age("2w") == timedelta(weeks=2)
    assert parse_age(45) == timedelta(days=45) and parse_age("never") is None and parse_age(None) is None
    custom = RetentionSettings.model_validate({"outbox": 30, "jobs": "never", "schedule": None})
    assert custom.outbox == "30d" and custom.age("jobs") is None and custom.schedule is None


def test_bad_values_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("retention: {outbox: soon, idempotency_keys: 2h, schedule: 'daily', events: 30d}\n")
    _, problems = check_config(conf)
    said = {p.path: p.message for p in problems}
    assert "'soon' is not an age" in said["retention.outbox"]
    assert "bad cron expression 'daily'" in said["retention.schedule"]
    assert "events" in " ".join(said)
    conf.write_text("retention: {idempotency_keys: 2h}\n")
    with pytest.raises(ConfigError, match="idempotency_keys: 2h is shorter than 1 day"):
        load_retention(conf)
    monkeypatch.setenv("CMDB__RETENTION__OUTBOX", "14d")
    conf.write_text("retention: {jobs: 10d}\n")
    got = load_retention(conf)
    assert (got.jobs, got.outbox) == ("10d", "14d")


def _store_with_old_job(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "c.db")
    old = (NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.create_job(JobRecord("j-old", "import", "ops", old, "h:1:x", old))
    assert store.finish_job("j-old", "finished", old)
    return store


def test_a_running_scheduler_adds_a_daily_prune_and_it_prunes(tmp_path: Path) -> None:
    store = _store_with_old_job(tmp_path)
    try:
        cfg = parse_config({"scheduler": {"jobs": {"expiry": {"kind": "expiry_check", "cron": "0 6 * * *"}}}})
        out = io.StringIO()
        sched = Scheduler(store, "sqlite:///x", cfg, holder="h", clock=lambda: NOW, out=out)
        assert [(j.name, j.config.kind, j.config.cron, j.implicit) for j in sched.jobs] == [
            ("expiry", "expiry_check", "0 6 * * *", False), ("retention", "prune", "30 3 * * *", True)]
        assert sched.jobs[1].due == NOW.replace(hour=3, minute=30) + timedelta(days=1)
        assert [r["job"] for r in sched.run_once() if r] == ["expiry"]  # --once: the configured jobs only
        assert store.get_job("j-old") is not None
        record = sched.run_job(sched.jobs[1], NOW)
        assert record is not None and record["outcome"] == "ok", record
        assert record["summary"]["kinds"]["jobs"] == 1 and store.get_job("j-old") is None
        assert json.loads(out.getvalue().splitlines()[-1])["job"] == "retention"
    finally:
        store.close()


def test_a_configured_prune_job_replaces_the_implicit_one_and_null_turns_it_off(tmp_path: Path) -> None:
    store = _store_with_old_job(tmp_path)
    try:
        cfg = parse_config({"scheduler": {"jobs": {"tidy": {"kind": "prune", "cron": "0 1 * * 0",
                                                            "options": {"dry_run": True}}}},
                            "retention": {"jobs": "35d"}})
        sched = Scheduler(store, "sqlite:///x", cfg, holder="h", clock=lambda: NOW, out=io.StringIO())
        assert [j.name for j in sched.jobs] == ["tidy"]
        [record] = sched.run_once()
        assert record is not None and record["summary"]["dry_run"] is True and record["summary"]["kinds"]["jobs"] == 1
        assert store.get_job("j-old") is not None  # a dry run
        off = parse_config({"scheduler": {"jobs": {"e": {"kind": "deliver", "cron": "* * * * *"}}},
                            "retention": {"schedule": None}})
        assert [j.name for j in Scheduler(store, "sqlite:///x", off, clock=lambda: NOW, out=io.StringIO()).jobs] == [
            "e"]
        with pytest.raises(ConfigError, match=r"retention\.idempotency_keys"):
            parse_config({"retention": {"idempotency_keys": "1h"}})
    finally:
        store.close()
