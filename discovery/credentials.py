"""Named credential profiles: SNMP communities and v3 users, SSH logins, AWS profiles.

A profiles file (``--credentials FILE``, ``CMDB_CREDENTIALS`` or ``~/.config/cmdb/credentials.yaml``)
holds no secret itself, only where each secret lives::

    profiles:
      lab-v2c:  {type: snmp, version: 2c, community: {env: SNMP_COMMUNITY}}
      lab-v3:   {type: snmp, version: 3, user: monitor, auth_protocol: sha, auth_key: {file: /etc/cmdb/v3-auth},
                 priv_protocol: aes, priv_key: {env: SNMP_V3_PRIV}}
      linux:    {type: ssh, username: cmdb, key_file: /etc/cmdb/id_ed25519, passphrase: {env: CMDB_KEY_PASS}}
      routers:  {type: ssh, username: netops, password: {file: /etc/cmdb/router-pass}, device_type: cisco_ios}
      prod:     {type: aws, aws_profile: prod, regions: [eu-west-1]}

A secret is read when a collector needs it, from an environment variable or a file that only its
owner can read (mode 0600 or stricter; anything looser is refused). A ``Secret`` never shows its
value in ``repr``/``str``, so it cannot leak into logs, exceptions or run records by accident.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from platformdirs import user_config_dir

from cmdb.errors import ConfigError

SNMP_AUTH_PROTOCOLS = ("md5", "sha", "sha224", "sha256", "sha384", "sha512")
SNMP_PRIV_PROTOCOLS = ("des", "3des", "aes", "aes128", "aes192", "aes256")


class Secret:
    """A secret value that does not print itself."""

    __slots__ = ("_value", "label")

    def __init__(self, value: str, label: str) -> None:
        self._value = value
        self.label = label

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.label})"

    __str__ = __repr__


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: ``env`` names a variable, ``file`` a 0600 file (first line, stripped)."""

    profile: str
    field: str
    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> Secret:
        label = f"{self.profile}.{self.field}"
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"credential profile {self.profile!r}: {self.field} comes from environment "
                                  f"variable {self.env}, which is not set; export it or use a 0600 file")
            return Secret(value, label)
        assert self.file is not None
        return Secret(read_secret_file(Path(self.file), f"credential profile {self.profile!r}: {self.field}"), label)


def read_secret_file(path: Path, what: str) -> str:
    """The first line of a secret file, refused unless only its owner may read it."""
    path = path.expanduser()
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror}); create it with mode 0600") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what}: {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                          f"run chmod 600 {path}")
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror})") from None
    return lines[0].strip() if lines else ""


@dataclass(frozen=True)
class SnmpProfile:
    name: str
    version: str  # "2c" or "3"
    community: SecretRef | None = None
    user: str | None = None
    auth_protocol: str | None = None
    auth_key: SecretRef | None = None
    priv_protocol: str | None = None
    priv_key: SecretRef | None = None
    context: str = ""
    port: int = 161

    kind = "snmp"


@dataclass(frozen=True)
class SshProfile:
    name: str
    username: str
    key_file: str | None = None
    passphrase: SecretRef | None = None
    password: SecretRef | None = None
    port: int = 22
    device_type: str | None = None  # netmiko platform for network devices (cisco_ios, arista_eos, juniper_junos)
    sudo: bool = False
    known_hosts: str | None = None

    kind = "ssh"

    def check_key_file(self) -> Path | None:
        """The private key path, refused unless it is 0600 (as ssh itself insists)."""
        if not self.key_file:
            return None
        path = Path(self.key_file).expanduser()
        read_secret_file(path, f"credential profile {self.name!r}: key_file")
        return path


@dataclass(frozen=True)
class AwsProfile:
    name: str
    aws_profile: str | None = None
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    regions: tuple[str, ...] = ()
    endpoint_url: str | None = None

    kind = "aws"


Profile = SnmpProfile | SshProfile | AwsProfile


@dataclass
class Credentials:
    """The profiles of one file, looked up by name."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    origin: str = "credentials"

    def get(self, name: str, kind: str | None = None) -> Profile:
        prof = self.profiles.get(name)
        if prof is None:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(f"{self.origin}: no credential profile {name!r} (known: {known})")
        if kind is not None and prof.kind != kind:
            raise ConfigError(f"{self.origin}: profile {name!r} is a {prof.kind} profile, not {kind}")
        return prof

    def pick(self, names: Sequence[str], kind: str) -> list[Profile]:
        """The named profiles of ``kind`` in order; all profiles of that kind when none is named."""
        if names:
            return [self.get(n, kind) for n in names]
        found = [p for p in self.profiles.values() if p.kind == kind]
        if not found:
            raise ConfigError(f"{self.origin}: no {kind} credential profile; add one or name one with --profile")
        return found


def default_credentials_path() -> Path:
    env = os.environ.get("CMDB_CREDENTIALS")
    return Path(env) if env else Path(user_config_dir("cmdb")) / "credentials.yaml"


def _ref(profile: str, fieldname: str, value: Any) -> SecretRef | None:
    if value is None:
        return None
    if isinstance(value, Mapping) and set(value) in ({"env"}, {"file"}) and isinstance(next(iter(value.values())), str):
        return SecretRef(profile, fieldname, env=value.get("env"), file=value.get("file"))
    raise ConfigError(f"credential profile {profile!r}: {fieldname} must be {{env: VARIABLE}} or {{file: PATH}}; "
                      "secrets are referenced by name, never written in the profiles file")


def _profile(name: str, doc: Any, origin: str) -> Profile:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{origin}: profile {name!r} must be a mapping with a type")
    kind = doc.get("type")
    allowed: dict[str, set[str]] = {
        "snmp": {"type", "version", "community", "user", "auth_protocol", "auth_key", "priv_protocol", "priv_key",
                 "context", "port"},
        "ssh": {"type", "username", "key_file", "passphrase", "password", "port", "device_type", "sudo",
                "known_hosts"},
        "aws": {"type", "aws_profile", "access_key_id", "secret_access_key", "regions", "endpoint_url"},
    }
    if kind not in allowed:
        raise ConfigError(f"{origin}: profile {name!r} has type {kind!r}; use snmp, ssh or aws")
    unknown = set(doc) - allowed[kind]
    if unknown:
        raise ConfigError(f"{origin}: profile {name!r} has unknown field(s) {', '.join(sorted(unknown))}")
    try:
        if kind == "snmp":
            version = str(doc.get("version", "2c")).lower().lstrip("v")
            if version in ("2", "2c"):
                community = _ref(name, "community", doc.get("community"))
                if community is None:
                    raise ConfigError(f"{origin}: SNMP v2c profile {name!r} needs community: {{env: ...}}")
                return SnmpProfile(name, "2c", community=community, port=int(doc.get("port", 161)))
            if version != "3":
                raise ConfigError(f"{origin}: profile {name!r}: SNMP version {version!r}; use 2c or 3")
            auth = str(doc.get("auth_protocol", "sha")).lower()
            priv = doc.get("priv_protocol")
            if auth not in SNMP_AUTH_PROTOCOLS:
                raise ConfigError(f"{origin}: profile {name!r}: auth_protocol {auth!r}; "
                                  f"use {', '.join(SNMP_AUTH_PROTOCOLS)}")
            if priv is not None and str(priv).lower() not in SNMP_PRIV_PROTOCOLS:
                raise ConfigError(f"{origin}: profile {name!r}: priv_protocol {priv!r}; "
                                  f"use {', '.join(SNMP_PRIV_PROTOCOLS)}")
            if not doc.get("user"):
                raise ConfigError(f"{origin}: SNMP v3 profile {name!r} needs a user")
            return SnmpProfile(
                name, "3", user=str(doc["user"]), auth_protocol=auth,
                auth_key=_ref(name, "auth_key", doc.get("auth_key")),
                priv_protocol=str(priv).lower() if priv else None, priv_key=_ref(name, "priv_key", doc.get("priv_key")),
                context=str(doc.get("context", "")), port=int(doc.get("port", 161)),
            )
        if kind == "ssh":
            if not doc.get("username"):
                raise ConfigError(f"{origin}: SSH profile {name!r} needs a username")
            return SshProfile(
                name, str(doc["username"]), key_file=doc.get("key_file"),
                passphrase=_ref(name, "passphrase", doc.get("passphrase")),
                password=_ref(name, "password", doc.get("password")), port=int(doc.get("port", 22)),
                device_type=doc.get("device_type"), sudo=bool(doc.get("sudo", False)),
                known_hosts=doc.get("known_hosts"),
            )
        return AwsProfile(
            name, aws_profile=doc.get("aws_profile"),
            access_key_id=_ref(name, "access_key_id", doc.get("access_key_id")),
            secret_access_key=_ref(name, "secret_access_key", doc.get("secret_access_key")),
            regions=tuple(doc.get("regions") or ()), endpoint_url=doc.get("endpoint_url"),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: profile {name!r}: {exc}") from None


def parse_credentials(doc: Any, origin: str = "credentials") -> Credentials:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("profiles"), Mapping):
        raise ConfigError(f"{origin}: expected a mapping with 'profiles:'")
    return Credentials({str(n): _profile(str(n), p, origin) for n, p in doc["profiles"].items()}, origin)


def load_credentials(path: Path | str | None = None) -> Credentials:
    """The profiles file at ``path`` (or the default); a missing default file means no profiles."""
    explicit = path is not None or "CMDB_CREDENTIALS" in os.environ
    p = Path(path) if path is not None else default_credentials_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"credentials file {p} does not exist; create it "
                              "(format: README, section Discovery, Credentials)")
        return Credentials({}, str(p))
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"credentials file {p}: {exc}") from None
    return parse_credentials(doc, str(p))
