"""Delivery that loses nothing, against real receivers on loopback (aiosmtpd, an http.server), clock injected."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cmdb.store.sqlite import SqliteStore
from cmdb.store.tasks import Assignment, new_task
from impact.automation_config import AutomationConfig, parse_config
from impact.delivery import deliver_due
from impact.outbox import build_messages, task_messages
from tests.integration.notify.conftest import SMTP_PASSWORD, SMTP_USER, MailSink, WebhookReceiver

T0 = datetime(2027, 5, 3, 8, 0, tzinfo=UTC)
HOOK_KEY = "hook-signing-key"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "outbox.db")
    try:
        yield s
    finally:
        s.close()


def a_task() -> Any:
    return new_task("certificate_expiry", "ci-1", "2027-05-20T00:00:00Z", now=T0, actor="test", priority="P2",
                    due="2027-05-20T00:00:00.000000Z", ci_name="shop.example.com", threshold="30d",
                    assignee=Assignment(person_id="p1", person_name="Alice", person_email="alice@example.com",
                                        reason="owner of shop.example.com"),
                    services_at_risk=[{"id": "s1", "name": "Checkout", "tier": 1, "state": "down",
                                       "path": ["shop.example.com", "lb-fra-1", "Checkout"]}],
                    details={"urgency": "medium", "impact": "high"})


def test_email_over_starttls_with_login_and_password_file(store: SqliteStore, mail: MailSink, tmp_path: Path) -> None:
    secret = tmp_path / "smtp-pass"
    secret.write_text(SMTP_PASSWORD + "\n")
    secret.chmod(0o600)
    cfg = parse_config({"channels": {"mail": {
        "type": "email", "host": mail.host, "port": mail.port, "starttls": True, "username": SMTP_USER,
        "password": {"file": str(secret)}, "from": "cmdb@example.com", "ca_file": str(mail.ca_file)}}})
    task = a_task()
    assert store.enqueue_messages(task_messages(cfg, task, "raised", T0)) == [True]
    rep = deliver_due(store, cfg, T0)
    assert (rep.sent, rep.retrying, rep.dead) == (1, 0, 0)
    [(rcpts, msg, tls, authed)] = mail.take()
    assert rcpts == ["alice@example.com"] and tls and authed
    assert msg["Subject"] == "[P2] New task for you: certificate expiry: shop.example.com expires in 16 days"
    assert msg["Idempotency-Key"] == f"{task.id}:raised:30d:p1:mail"
    body = msg.get_content()
    assert "Why you:     owner of shop.example.com" in body and "Checkout (tier 1): down" in body
    assert SMTP_PASSWORD not in json.dumps([m.__dict__ for m in store.list_messages()])
    assert store.list_messages("sent")[0].attempts == 1


def test_wrong_smtp_password_is_retried_then_dead(store: SqliteStore, mail: MailSink, tmp_path: Path) -> None:
    os.environ["CMDB_TEST_SMTP_PASS"] = "wrong"
    cfg = parse_config({"delivery": {"max_attempts": 2, "backoff_seconds": 60}, "channels": {"mail": {
        "type": "email", "host": mail.host, "port": mail.port, "starttls": True, "username": SMTP_USER,
        "password": {"env": "CMDB_TEST_SMTP_PASS"}, "from": "cmdb@example.com", "ca_file": str(mail.ca_file),
        "timeout": 1.0}}})  # aiosmtpd stalls a failed login instead of answering 535
    store.enqueue_messages(task_messages(cfg, a_task(), "raised", T0))
    assert deliver_due(store, cfg, T0).retrying == 1
    assert deliver_due(store, cfg, T0 + timedelta(seconds=59)).retrying == 0  # not due before the backoff
    rep = deliver_due(store, cfg, T0 + timedelta(seconds=60))
    assert rep.dead == 1 and mail.take() == []
    [dead] = store.list_messages("dead")
    assert dead.attempts == 2 and f"SMTP {mail.host}:{mail.port}" in (dead.last_error or "")
    assert "wrong" not in (dead.last_error or "")


def webhook_config(url: str, **delivery: Any) -> AutomationConfig:
    os.environ["CMDB_TEST_HOOK_KEY"] = HOOK_KEY
    return parse_config({"delivery": delivery, "channels": {
        name: {"type": "webhook", "url": f"{url}/{name}", "template": name, "secret": {"env": "CMDB_TEST_HOOK_KEY"}}
        for name in ("jira", "servicenow", "slack", "teams")}})


def test_webhooks_signed_with_shipped_templates(store: SqliteStore, webhook: WebhookReceiver) -> None:
    cfg = webhook_config(webhook.url)
    store.enqueue_messages(task_messages(cfg, a_task(), "raised", T0))
    assert deliver_due(store, cfg, T0).sent == 4
    got = {r.path.rsplit("/", 1)[1]: r for r in webhook.take()}
    assert set(got) == {"jira", "servicenow", "slack", "teams"}
    for name, r in got.items():
        expected = "sha256=" + hmac.new(HOOK_KEY.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-cmdb-signature"] == expected
        assert r.headers["idempotency-key"].endswith(f":{name}")
        assert r.headers["idempotency-key"] in r.body.decode()  # the key travels in the payload too
    jira = json.loads(got["jira"].body)
    assert jira["fields"]["summary"].startswith("[P2] New task for you") and jira["fields"]["priority"]["name"] == "P2"
    snow = json.loads(got["servicenow"].body)
    assert (snow["urgency"], snow["impact"]) == ("2", "1")
    assert "Checkout (tier 1)" in json.loads(got["slack"].body)["text"]
    assert json.loads(got["teams"].body)["attachments"][0]["content"]["type"] == "AdaptiveCard"


def test_receiver_down_for_a_while_loses_nothing_and_sends_nothing_twice(
        store: SqliteStore, webhook: WebhookReceiver) -> None:
    cfg = parse_config({"channels": {"hook": {"type": "webhook", "url": webhook.url, "template": "slack"}}})
    msgs = [m for i in range(5) for m in build_messages(cfg, "incident", recipients=[], subject=f"news {i}",
                                                        body="b", key=f"INC-7:start:{i}", now=T0)]
    webhook.stop()  # down: connections refused
    store.enqueue_messages(msgs)
    rep = deliver_due(store, cfg, T0)
    assert rep.retrying == 5 and "cannot reach" in rep.errors[0]
    assert deliver_due(store, cfg, T0 + timedelta(seconds=20)).retrying == 0  # waiting out the backoff
    rep = deliver_due(store, cfg, T0 + timedelta(seconds=30))  # still down: the delay doubles
    assert rep.retrying == 5
    assert {m.next_attempt_at[:19] for m in store.list_messages("pending")} == {"2027-05-03T08:01:30"}
    webhook.start()  # back on the same port
    webhook.fail_next = 1  # one request is taken in but answered 503: the receiver must see the same key again
    rep = deliver_due(store, cfg, T0 + timedelta(seconds=90))
    assert (rep.sent, rep.retrying) == (4, 1)
    assert deliver_due(store, cfg, T0 + timedelta(seconds=300)).sent == 1
    assert deliver_due(store, cfg, T0 + timedelta(days=1)).sent == 0
    got = webhook.take()
    keys = [r.headers["idempotency-key"] for r in got]
    assert sorted(set(keys)) == sorted(m.idempotency_key for m in msgs)  # nothing lost
    assert len(keys) == 6 and len(set(keys)) == 5  # the one repeat carries its key: the receiver drops it
    assert {m.state for m in store.list_messages()} == {"sent"}


def cmdb(db: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{db}", "CMDB_CONFIG": str(config), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def test_dead_letters_listed_and_retried_from_the_cli(tmp_path: Path, webhook: WebhookReceiver) -> None:
    db, conf = tmp_path / "cli.db", tmp_path / "cmdb.yaml"
    conf.write_text(f"delivery: {{max_attempts: 1}}\nchannels:\n  hook: {{type: webhook, url: '{webhook.url}'}}\n")
    cfg = parse_config({"delivery": {"max_attempts": 1}, "channels": {"hook": {"type": "webhook", "url": webhook.url}}})
    s = SqliteStore(db)
    try:
        s.enqueue_messages(build_messages(cfg, "change", recipients=[], subject="CHG1", body="b", key="CHG1",
                                          now=datetime.now(UTC)))  # the CLI runs on the wall clock
    finally:
        s.close()
    webhook.stop()
    assert cmdb(db, conf, "outbox", "deliver").returncode == 0
    dead = json.loads(cmdb(db, conf, "outbox", "list", "--state", "dead", "--json").stdout)["items"]
    assert len(dead) == 1 and dead[0]["attempts"] == 1 and webhook.url in dead[0]["last_error"]
    webhook.start()
    assert cmdb(db, conf, "outbox", "retry", dead[0]["id"]).returncode == 0
    out = cmdb(db, conf, "outbox", "deliver", "--json")
    assert json.loads(out.stdout)["sent"] == 1
    assert [r.headers["idempotency-key"] for r in webhook.take()] == ["CHG1:hook"]
    assert cmdb(db, conf, "outbox", "retry", "msg-nope").returncode == 3  # not found


def test_user_templates_replace_the_shipped_ones(store: SqliteStore, tmp_path: Path) -> None:
    (tmp_path / "task.txt.j2").write_text("Subject: renew {{ task.ci_name }} ({{ task.priority }})\n\nPlease.\n")
    cfg = parse_config({"delivery": {"templates": str(tmp_path)}, "channels": {
        "mail": {"type": "email", "host": "127.0.0.1", "from": "cmdb@example.com"}}})
    [msg] = task_messages(cfg, a_task(), "raised", T0)
    assert (msg.subject, msg.payload) == ("renew shop.example.com (P2)", "Please.\n")


def test_webhook_template_from_a_user_file_and_a_broken_one(tmp_path: Path) -> None:
    from cmdb.errors import ConfigError

    (tmp_path / "pager.json.j2").write_text(
        '{"summary": {{ subject | tojson }}, "dedup": {{ idempotency_key | tojson }}}')
    (tmp_path / "broken.json.j2").write_text('{"summary": {{ subject }}}')  # not JSON once rendered
    cfg = parse_config({"channels": {
        "pager": {"type": "webhook", "url": "http://127.0.0.1:9/x", "template": str(tmp_path / "pager.json.j2")}}})
    [msg] = task_messages(cfg, a_task(), "raised", T0)
    assert json.loads(msg.payload) == {"summary": msg.subject, "dedup": msg.idempotency_key}
    bad = parse_config({"channels": {
        "pager": {"type": "webhook", "url": "http://127.0.0.1:9/x", "template": str(tmp_path / "broken.json.j2")}}})
    with pytest.raises(ConfigError, match=r"broken\.json\.j2.* did not render JSON"):
        task_messages(bad, a_task(), "raised", T0)
