"""``cmdb scheduler`` as processes: refused when misconfigured; two on one store raise every task once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from cmdb.store.tasks import TaskQuery
from tests.integration.notify.conftest import MailSink

CERTS = 12


def env(tmp: Path, config: Path) -> dict[str, str]:
    return {**os.environ, "CMDB_STORE": f"sqlite:///{tmp / 'cmdb.db'}", "CMDB_CONFIG": str(config)}


@pytest.mark.parametrize(("config", "expected"), [
    ("tasks: {channels: [pager]}\nscheduler: {jobs: {e: {kind: expiry_check, cron: '* * * * *'}}}\n",
     "tasks.channels: unknown channel 'pager'"),
    ("channels: {pager: {type: sms, number: '+4912345'}}\nscheduler: {jobs: {e: {kind: deliver, cron: '* * * * *'}}}\n",
     "channels.pager: Input tag 'sms' found using 'type' does not match any of the expected tags: 'email', 'webhook'"),
    ("scheduler: {jobs: {nightly: {kind: expiry_check, cron: '0 25 * * *'}}}\n",
     "scheduler.jobs.nightly.cron: bad cron expression '0 25 * * *'"),
    ("channels: {mail: {type: email, host: 127.0.0.1, from: a@b, username: u, password: {file: SECRET}}}\n"
     "scheduler: {jobs: {e: {kind: deliver, cron: '* * * * *'}}}\n",
     "channel 'mail': password: "),
    ("scheduler: {jobs: {dmz: {kind: scan, cron: '* * * * *'}}}\n", "scheduler.jobs.dmz: a scan job needs targets"),
    ("scheduler: {jobs: {hosts: {kind: ssh, cron: '0 1 * * *', targets: [10.0.0.1], profiles: [nope],"
     " credentials: CREDS}}}\n", "scheduler.jobs.hosts: |no credential profile 'nope' (known: linux)"),
    ("scheduler: {jobs: {hosts: {kind: ssh, cron: '0 1 * * *', targets: [10.0.0.1], profiles: [linux],"
     " credentials: CREDS}}}\n", "scheduler.jobs.hosts: |credential profile 'linux': password: |readable by others"),
])
def test_bad_configuration_names_the_entry_and_nothing_starts(tmp_path: Path, config: str, expected: str) -> None:
    secret = tmp_path / "smtp-pass"
    secret.write_text("pw\n")
    secret.chmod(0o644)  # readable by others: refused
    conf = tmp_path / "cmdb.yaml"
    creds = tmp_path / "credentials.yaml"
    creds.write_text(f"profiles:\n  linux: {{type: ssh, username: cmdb, password: {{file: {secret}}}}}\n")
    conf.write_text(config.replace("SECRET", str(secret)).replace("CREDS", str(creds)))
    proc = subprocess.run([sys.executable, "-m", "product.cli", "scheduler"], capture_output=True, text=True,
                          env=env(tmp_path, conf), timeout=60, check=False)
    assert proc.returncode == 2
    assert all(part in proc.stderr for part in expected.split("|")), proc.stderr
    assert str(conf) in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""  # never started, not even half


def estate(db: Path, now: datetime) -> None:
    store = SqliteStore(db)
    try:
        cis: list[dict[str, Any]] = [{"ref": "owner", "class": "Person", "name": "Ops", "email": "ops@example.com"}]
        rels = []
        for i in range(CERTS):
            cis.append({"ref": f"c{i}", "class": "Certificate", "subject": f"site-{i}.example.com",
                        "fingerprint_sha256": f"{i:064x}",
                        "not_after": (now + timedelta(days=5 + 7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")})
            rels.append({"type": "OWNED_BY", "from": f"c{i}", "to": "owner"})
        ingest(store, Batch.from_dict({"source": "import", "cis": cis, "relationships": rels}))
    finally:
        store.close()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def until(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    """Wait for ``condition``; the deadline is generous (a busy CI machine), a quiet one meets it at once."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.1)


def test_two_schedulers_on_one_store_raise_every_task_once(tmp_path: Path, mail: MailSink) -> None:
    estate(tmp_path / "cmdb.db", datetime.now(UTC))
    conf = tmp_path / "cmdb.yaml"
    conf.write_text(f"""\
channels:
  mail: {{type: email, host: {mail.host}, port: {mail.port}, from: cmdb@example.com}}
scheduler:
  tick_seconds: 0.2
  jobs:
    expiry:  {{kind: expiry_check, cron: "* * * * * *"}}
    deliver: {{kind: deliver, cron: "*/2 * * * * *"}}
""")
    logs = [(tmp_path / f"scheduler-{k}.out", tmp_path / f"scheduler-{k}.err") for k in range(2)]
    procs = []
    for out_path, err_path in logs:
        with out_path.open("w") as out, err_path.open("w") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "product.cli", "scheduler"], stdout=out, stderr=err,
                                          text=True, env=env(tmp_path, conf)))

    def expiry_firings() -> list[int]:  # lines written so far (the last one may still be being written)
        done = [out_path.read_text().rpartition("\n")[0] for out_path, _ in logs]
        return [sum(1 for r in lines(text) if r.get("job") == "expiry") for text in done]

    try:
        # Conditions, not durations: a busy machine starts the two processes and fires their jobs late.
        until(lambda: len(mail.messages) >= 12, "every notice delivered")
        seen = expiry_firings()  # then a few more occurrences in both: nothing new may be raised or sent
        until(lambda: all(now >= then + 3 for now, then in zip(expiry_firings(), seen, strict=True)),
              "three more expiry occurrences fired in each scheduler")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    outputs = [(out_path.read_text(), err_path.read_text()) for out_path, err_path in logs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    runs = [r for out, _err in outputs for r in lines(out) if "job" in r]
    ok = [r for r in runs if r["outcome"] == "ok"]
    assert {r["holder"] for out, _ in outputs for r in lines(out) if r.get("scheduler") == "stopped"} == {
        r["holder"] for out, _ in outputs for r in lines(out) if r.get("scheduler") == "started"}
    per_occurrence = Counter((r["job"], r["fire_time"]) for r in ok)
    assert per_occurrence and max(per_occurrence.values()) == 1  # each occurrence ran in one scheduler only
    assert any(r["outcome"] == "skipped" for r in runs)  # the other found the lease held
    within_90 = sum(1 for i in range(CERTS) if 5 + 7 * i <= 90)
    assert sum(r["summary"]["raised"] for r in ok if r["job"] == "expiry") == within_90
    store = SqliteStore(tmp_path / "cmdb.db")
    try:
        assert len(store.list_tasks(TaskQuery())) == within_90
        assert len(store.list_messages("sent")) == within_90
    finally:
        store.close()
    keys = [m["Idempotency-Key"] for _r, m, *_ in mail.take()]
    assert len(keys) == within_90 == len(set(keys))  # every notice arrived, none twice


def test_lease_gives_each_occurrence_to_one_scheduler_with_an_injected_clock(tmp_path: Path) -> None:
    import io

    from impact.automation_config import parse_config
    from impact.scheduler import Scheduler, next_fire
    from impact.scheduler_jobs import discovery_argv

    t0 = datetime(2027, 6, 1, 6, 0, tzinfo=UTC)
    clock = [t0]
    cfg = parse_config({"scheduler": {"jobs": {"expiry": {"kind": "expiry_check", "cron": "0 6 * * *"}}}})
    assert next_fire("0 6 * * *", t0) == t0 + timedelta(days=1)
    assert next_fire("*/10 * * * * *", t0 + timedelta(seconds=1)) == t0 + timedelta(seconds=10)
    stores = [SqliteStore(tmp_path / "lease.db"), SqliteStore(tmp_path / "lease.db")]
    try:
        a, b = (Scheduler(s, "sqlite:///x", cfg, holder=h, clock=lambda: clock[0], out=io.StringIO())
                for s, h in zip(stores, ("a", "b"), strict=True))
        assert a.run_job(a.jobs[0], t0) is not None
        assert b.run_job(b.jobs[0], t0) is None  # same occurrence: the lease is held until just before the next
        clock[0] = t0 + timedelta(hours=23, minutes=59)
        assert b.run_job(b.jobs[0], t0) is None
        clock[0] = t0 + timedelta(days=1)
        assert b.run_job(b.jobs[0], clock[0]) is not None  # the next occurrence: whoever comes first
    finally:
        for s in stores:
            s.close()
    job = parse_config({"scheduler": {"jobs": {"r": {
        "kind": "devices", "cron": "0 2 * * *", "targets": ["10.1.0.0/29"], "profiles": ["routers", "lab"],
        "credentials": "/etc/cmdb/credentials.yaml", "options": {"trust_on_first_use": True, "concurrency": 4}}}}})
    argv = discovery_argv("devices", "sqlite:///c.db", job.scheduler.jobs["r"])
    assert argv[3:] == ["--store", "sqlite:///c.db", "discover", "devices", "10.1.0.0/29", "--profile", "routers",
                        "--profile", "lab", "--credentials", "/etc/cmdb/credentials.yaml", "--trust-on-first-use",
                        "--concurrency", "4", "--json"]


def test_a_late_scheduler_never_runs_an_occurrence_twice(tmp_path: Path) -> None:
    """On a busy machine a scheduler may fire an occurrence after another ran it and cut the lease: the
    cut lease still covers it (even when the job overran that moment), and one fired too late skips."""
    import io

    from impact.automation_config import parse_config
    from impact.scheduler import Scheduler

    t0 = datetime(2027, 6, 1, 6, 0, tzinfo=UTC)
    cfg = parse_config({"scheduler": {"jobs": {"expiry": {"kind": "expiry_check", "cron": "* * * * * *"}}}})
    calls = [0]

    def overrunning() -> datetime:  # t0 when first asked, then (the job ran 0.8 s) t0 + 0.8 s
        calls[0] += 1
        return t0 if calls[0] == 1 else t0 + timedelta(seconds=0.8)

    b_now = [t0 + timedelta(seconds=0.4)]
    stores = [SqliteStore(tmp_path / "lease.db"), SqliteStore(tmp_path / "lease.db")]
    try:
        a = Scheduler(stores[0], "sqlite:///x", cfg, holder="a", clock=overrunning, out=io.StringIO())
        calls[0] = 0  # the run below asks first
        b_out = io.StringIO()
        b = Scheduler(stores[1], "sqlite:///x", cfg, holder="b", clock=lambda: b_now[0], out=b_out)
        assert a.run_job(a.jobs[0], t0) is not None  # ran t0's occurrence, finished after its lease would lapse
        # b read its clock (t0 + 0.4 s) before a finished, and reaches the store only now: held, skipped.
        assert b.run_job(b.jobs[0], t0) is None
        b_now[0] = t0 + timedelta(seconds=0.6)  # too late to know whether t0's occurrence ran: skipped
        assert b.run_job(b.jobs[0], t0) is None
        assert [json.loads(line)["reason"].split(":")[0] for line in b_out.getvalue().splitlines()] == [
            "lease held by another scheduler", "late"]
        b_now[0] = t0 + timedelta(seconds=1)
        assert b.run_job(b.jobs[0], b_now[0]) is not None  # the next occurrence is b's
    finally:
        for s in stores:
            s.close()


def test_sigterm_lets_the_job_in_flight_finish(tmp_path: Path, webhook: Any) -> None:
    from impact.automation_config import parse_config
    from impact.outbox import build_messages

    conf = tmp_path / "cmdb.yaml"
    conf.write_text(f"""\
channels:
  hook: {{type: webhook, url: "{webhook.url}"}}
scheduler:
  tick_seconds: 0.1
  jobs:
    deliver: {{kind: deliver, cron: "* * * * * *"}}
""")
    cfg = parse_config({"channels": {"hook": {"type": "webhook", "url": webhook.url}}})
    store = SqliteStore(tmp_path / "cmdb.db")
    store.enqueue_messages(build_messages(cfg, "incident", recipients=[], subject="s", body="b", key="INC-9",
                                          now=datetime.now(UTC)))
    webhook.delay = 2.0  # the job is in flight for two seconds
    proc = subprocess.Popen([sys.executable, "-m", "product.cli", "scheduler"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(tmp_path, conf))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not webhook.requests:
            time.sleep(0.05)
        assert webhook.requests, "the delivery job never started"
        proc.send_signal(signal.SIGTERM)  # while the receiver is still answering
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    records = lines(out)
    assert [r["outcome"] for r in records if r.get("job")] == ["ok"]  # finished, and nothing started after
    assert records[-1] == {"scheduler": "stopped", "holder": records[0]["holder"]}
    try:
        assert [m.state for m in store.list_messages()] == ["sent"]
    finally:
        store.close()
