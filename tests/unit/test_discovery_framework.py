"""Target lists and credential profiles: the parts of a discovery run that need no network."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from cmdb.errors import BadInputError, ConfigError
from discovery.credentials import Secret, SnmpProfile, SshProfile, load_credentials, parse_credentials
from discovery.targets import expand_targets, scope_of


def test_targets_expand_cidrs_ranges_names_and_files(tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text("# lab\n192.168.9.7\nweb-01.Example.com  # the web box\n\n")
    got = expand_targets(["10.0.0.0/30", "10.0.1.5-7", "10.0.2.9-10.0.2.10", "10.0.0.1", f"@{listing}"])
    assert got == ["10.0.0.1", "10.0.0.2", "10.0.1.5", "10.0.1.6", "10.0.1.7", "10.0.2.9", "10.0.2.10",
                   "192.168.9.7", "web-01.example.com"]
    assert expand_targets(["10.0.0.0/31", "10.0.0.9/32"]) == ["10.0.0.0", "10.0.0.1", "10.0.0.9"]


def test_exclusions_by_address_range_cidr_and_name() -> None:
    got = expand_targets(["10.0.0.0/28", "db-1"], exclude=["10.0.0.1", "10.0.0.4-6", "10.0.0.8/30", "DB-1"])
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.7", "10.0.0.12", "10.0.0.13", "10.0.0.14"]


@pytest.mark.parametrize(("spec", "message"), [
    ("10.0.0.0/33", "not a CIDR"),
    ("10.0.0.9-3", "ends before it starts"),
    ("10.0.0.0/8", "more than"),
    ("@/nonexistent/targets", "target file"),
    ("bad host", "neither an address"),
])
def test_bad_targets_are_named(spec: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as info:
        expand_targets([spec], limit=4096)
    assert spec.split("@")[-1].split(" ")[0] in str(info.value)


def test_nothing_left_is_an_error() -> None:
    with pytest.raises(BadInputError, match="no targets left"):
        expand_targets(["10.0.0.1"], exclude=["10.0.0.0/24"])


def test_scope_of_a_target() -> None:
    assert scope_of("10.0.0.5") == "10.0.0.5/32"
    assert scope_of("2001:db8::1") == "2001:db8::1/128"
    assert scope_of("web-01") == "web-01"


PROFILES = {
    "profiles": {
        "lab": {"type": "snmp", "version": "2c", "community": {"env": "TEST_SNMP_COMMUNITY"}},
        "v3": {"type": "snmp", "version": 3, "user": "mon", "auth_protocol": "SHA", "auth_key": {"file": "AUTH"},
               "priv_protocol": "aes", "priv_key": {"env": "TEST_SNMP_PRIV"}},
        "linux": {"type": "ssh", "username": "cmdb", "key_file": "KEY", "passphrase": {"env": "TEST_PASS"}},
    }
}


def _profiles(tmp_path: Path) -> dict[str, object]:
    doc = {"profiles": dict(PROFILES["profiles"])}
    v3 = dict(doc["profiles"]["v3"])
    v3["auth_key"] = {"file": str(tmp_path / "auth")}
    doc["profiles"]["v3"] = v3
    ssh = dict(doc["profiles"]["linux"])
    ssh["key_file"] = str(tmp_path / "id_test")
    doc["profiles"]["linux"] = ssh
    return doc


def test_secrets_come_from_env_and_0600_files_and_never_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    creds = parse_credentials(_profiles(tmp_path), "creds.yaml")
    monkeypatch.setenv("TEST_SNMP_COMMUNITY", "c0mmun1ty-s3cret")
    lab = creds.get("lab", "snmp")
    assert isinstance(lab, SnmpProfile) and lab.community is not None
    secret = lab.community.resolve()
    assert isinstance(secret, Secret) and secret.reveal() == "c0mmun1ty-s3cret"
    logging.getLogger("test").warning("using %s and %r in %s", secret, secret, lab)
    assert "c0mmun1ty-s3cret" not in caplog.text and "Secret(lab.community)" in caplog.text

    auth = tmp_path / "auth"
    auth.write_text("v3-auth-s3cret\n")
    auth.chmod(0o644)
    v3 = creds.get("v3", "snmp")
    assert isinstance(v3, SnmpProfile) and v3.auth_key is not None and v3.auth_protocol == "sha"
    with pytest.raises(ConfigError, match="chmod 600") as info:
        v3.auth_key.resolve()
    assert "v3-auth-s3cret" not in str(info.value)
    auth.chmod(0o600)
    assert v3.auth_key.resolve().reveal() == "v3-auth-s3cret"

    monkeypatch.delenv("TEST_SNMP_PRIV", raising=False)
    assert v3.priv_key is not None
    with pytest.raises(ConfigError, match=r"TEST_SNMP_PRIV.*not set"):
        v3.priv_key.resolve()

    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o640)
    ssh = creds.get("linux", "ssh")
    assert isinstance(ssh, SshProfile)
    with pytest.raises(ConfigError, match="readable by others"):
        ssh.check_key_file()
    key.chmod(0o600)
    assert ssh.check_key_file() == key


@pytest.mark.parametrize(("profile", "message"), [
    ({"type": "snmp", "version": "2c", "community": "public"}, "never written in the profiles file"),
    ({"type": "snmp", "version": "1", "community": {"env": "X"}}, "use 2c or 3"),
    ({"type": "snmp", "version": "3", "user": "u", "auth_protocol": "crc32"}, "auth_protocol"),
    ({"type": "ssh"}, "needs a username"),
    ({"type": "ssh", "username": "u", "pasword": {"env": "X"}}, "unknown field"),
    ({"type": "telnet"}, "use snmp, ssh or aws"),
])
def test_bad_profiles_are_refused_with_the_reason(profile: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_credentials({"profiles": {"p1": profile}}, "creds.yaml")
    assert "p1" in str(info.value) and "public" not in str(info.value)


def test_profile_lookup_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = parse_credentials(_profiles(tmp_path), "creds.yaml")
    assert [p.name for p in creds.pick([], "snmp")] == ["lab", "v3"]
    assert [p.name for p in creds.pick(["v3"], "snmp")] == ["v3"]
    with pytest.raises(ConfigError, match="no credential profile 'nope'"):
        creds.get("nope")
    with pytest.raises(ConfigError, match="is a ssh profile, not snmp"):
        creds.pick(["linux"], "snmp")
    monkeypatch.setenv("CMDB_CREDENTIALS", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_credentials()
    path = tmp_path / "creds.yaml"
    path.write_text("profiles:\n  lab: {type: snmp, community: {env: C}}\n")
    assert list(load_credentials(path).profiles) == ["lab"]
    assert os.environ["CMDB_CREDENTIALS"].endswith("missing.yaml")
