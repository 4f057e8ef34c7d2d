"""SSH safety against real sshd: changed host keys, wrong keys, and secrets that never show."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from sshd_hosts import keygen

from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from tests.integration.ssh.conftest import Lab, discover, host_key_fingerprint

HOST_CLASSES = ["Host", "Server", "VirtualMachine", "Container"]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cmdb.db")
    try:
        yield s
    finally:
        s.close()


def test_changed_host_key_refuses_writes_nothing_and_warns(ssh_lab: Lab, store: SqliteStore, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    profiles = ssh_lab.profiles(tmp_path / "creds.yaml")
    known = tmp_path / "known_hosts"
    host = ssh_lab.rekey
    first = discover(store, [host.address], profiles, known)
    assert first.outcomes[0]["outcome"] == "ok"
    old_key = host_key_fingerprint(host)
    assert known.read_text().startswith(host.address + " ssh-ed25519 ")  # recorded on first use
    events = len(store.events())
    stats = store.stats()

    ssh_lab.lab.restart(host, new_host_key=True)  # the "host" is rebuilt, or someone is in the middle
    caplog.set_level(logging.INFO)
    second = discover(store, [host.address], profiles, known, tofu=True)  # TOFU never accepts a *changed* key
    outcome = second.outcomes[0]
    assert outcome["outcome"] == "host_key_changed" and outcome["items"] == 0
    assert host_key_fingerprint(host) in outcome["detail"] and "ssh-keygen -R" in outcome["detail"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "CHANGED" in r.getMessage()]
    assert len(warnings) == 1 and host.address in warnings[0].getMessage()
    assert len(store.events()) == events and store.stats() == stats  # nothing written for that host
    ci = store.search(SearchQuery(classes=HOST_CLASSES, attrs={"hostname": "rekey1"})).items[0]
    assert ci.attrs["ssh_host_key"] == old_key
    assert second.options.get("run_level_batches") is None  # no dependency batch either


def test_unknown_host_without_trust_on_first_use_is_refused(ssh_lab: Lab, store: SqliteStore,
                                                            tmp_path: Path) -> None:
    record = discover(store, [ssh_lab.db.address], ssh_lab.profiles(tmp_path / "creds.yaml"),
                      tmp_path / "empty_known_hosts", tofu=False)
    assert record.outcomes[0]["outcome"] == "host_key_unknown"
    assert store.stats()["cis"] == 0


def test_wrong_key_is_auth_failed_and_writes_nothing(ssh_lab: Lab, store: SqliteStore, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger_key")
    wrong = ssh_lab.profiles(tmp_path / "wrong.yaml", key=stranger)
    record = discover(store, [ssh_lab.app.address], wrong, tmp_path / "known_hosts")
    outcome = record.outcomes[0]
    assert (outcome["outcome"], outcome["profile"], outcome["items"]) == ("auth_failed", "lab", 0)
    assert store.stats()["cis"] == 0 and store.events() == []
    # with the right profile second in line, it is tried next and remembered on the host
    right = ssh_lab.profiles(tmp_path / "right.yaml")
    from dataclasses import replace

    both = [replace(wrong[0], name="stranger"), right[0]]
    record = discover(store, [ssh_lab.app.address], both, tmp_path / "known_hosts")
    assert (record.outcomes[0]["outcome"], record.outcomes[0]["profile"]) == ("ok", "lab")


def test_secrets_never_reach_logs_store_or_run_record(ssh_lab: Lab, store: SqliteStore, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    passphrase, password = "pp-Zebra-7731-secret", "pw-Walrus-4417-secret"
    key = keygen(tmp_path / "locked_key", passphrase=passphrase)
    with ssh_lab.lab.authorized_keys.open("a") as fh:
        fh.write(key.with_suffix(".pub").read_text())
    monkeypatch.setenv("CMDB_TEST_SSH_PASSPHRASE", passphrase)
    monkeypatch.setenv("CMDB_TEST_SSH_PASSWORD", password)
    extra = "    passphrase: {env: CMDB_TEST_SSH_PASSPHRASE}\n    password: {env: CMDB_TEST_SSH_PASSWORD}\n"
    profiles = ssh_lab.profiles(tmp_path / "locked.yaml", key=key, extra=extra)
    caplog.set_level(logging.DEBUG)  # everything, paramiko's debug output included
    ok = discover(store, [ssh_lab.app.address], profiles, tmp_path / "known_hosts")
    assert ok.outcomes[0]["outcome"] == "ok"
    monkeypatch.setenv("CMDB_TEST_SSH_PASSPHRASE", "not-" + passphrase)  # a wrong passphrase: refused, named
    bad = discover(store, [ssh_lab.app.address], profiles, tmp_path / "known_hosts")
    assert bad.outcomes[0]["outcome"] == "auth_failed" and "passphrase" in bad.outcomes[0]["detail"]

    private_key_body = key.read_text().splitlines()[1]
    seen = {
        "logs": caplog.text + "".join(str(r.args) for r in caplog.records),
        "store": json.dumps(list(store.dump()), default=str),
        "run records": json.dumps([asdict(r) for r in store.discovery_runs()], default=str),
        "profile repr": repr(profiles),
    }
    assert "Authentication (publickey) successful" in seen["logs"]  # the logs were really captured
    for where, text in seen.items():
        for secret in (passphrase, password, private_key_body):
            assert secret not in text, f"a secret leaked into the {where}"
