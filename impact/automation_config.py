"""The ``tasks:``, ``channels:``, ``delivery:`` and ``scheduler:`` sections of the configuration file.

The product's configuration file (``cmdb.config``: ``CMDB_CONFIG``, ``~/.config/cmdb/config.yaml`` or
``/etc/cmdb/config.yaml``)::

    tasks:
      thresholds_days: [90, 30, 7, 0]        # 0 = expired; crossing one raises the priority and notifies again
      by_class: {License: [60, 14, 0]}       # per class ...
      by_tier: {1: [120, 60, 30, 7, 0]}      # ... and per worst service tier at risk (tier wins over class)
      urgency: {high: 7, medium: 30}         # days left -> urgency for the priority matrix; else low
      default_queue: {name: ops-queue, email: ops@example.com}
      channels: [mail]                       # where task notifications go (default: every channel)
    channels:
      mail: {type: email, host: smtp.example.com, port: 587, starttls: true, username: cmdb,
             password: {file: /etc/cmdb/smtp-pass}, from: cmdb@example.com}
      jira: {type: webhook, url: https://jira.example.com/hook, template: jira, secret: {env: JIRA_HOOK_KEY}}
    delivery: {max_attempts: 6, backoff_seconds: 30, backoff_max_seconds: 3600, templates: /etc/cmdb/templates}
    scheduler:
      jobs:
        expiry:  {kind: expiry_check, cron: "0 6 * * *"}
        seats:   {kind: licence_check, cron: "0 7 * * 1"}
        deliver: {kind: deliver, cron: "* * * * *"}
        prune:   {kind: prune, cron: "30 3 * * *"}    # retention (cmdb.retention); added by itself if absent
        dmz:     {kind: scan, cron: "0 2 * * *", targets: [10.0.0.0/28], options: {ports: "443"}}
        cloud:   {kind: aws, cron: "0 3 * * *", profiles: [prod], role_arns: [arn:aws:iam::210987654321:role/cmdb],
                  regions: [us-east-1, eu-west-1], services: [ec2, elbv2, rds]}   # or all_regions: true

A ``prune`` job forgets old operational records by the ``retention:`` section (``cmdb prune``). A running
scheduler (not ``--once``) with no prune job of its own adds one, ``retention``, on ``retention.schedule``
(default daily at 03:30; ``schedule: null`` leaves it out), so a running system prunes itself.

An ``aws`` job takes what ``cmdb discover aws`` takes: AWS named profiles (one per account), role ARNs to
assume with the first profile, a region list or ``all_regions`` (neither: the profile's region), services
(default: all) and an ``endpoint_url``; it has no targets.

Everything is validated when loaded (pydantic), secrets included: an unknown channel, a bad cron
expression or an unreadable secret file is a ``ConfigError`` naming the entry, before anything starts.
A cron expression has five fields, or six with seconds first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cmdb.config import load_document
from cmdb.errors import ConfigError
from cmdb.retention import RetentionSettings
from discovery.credentials import Secret, read_secret_file

DEFAULT_THRESHOLDS = (90, 30, 7, 0)
JOB_KINDS = ("expiry_check", "licence_check", "deliver", "prune", "scan", "snmp", "ssh", "devices", "aws")
AWS_SERVICES = ("ec2", "elbv2", "autoscaling", "rds", "lambda", "acm", "eks", "route53", "s3")  # discovery/aws/cli.py
EVENTS = ("task", "incident", "change")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class SecretRefConfig(_Strict):
    """Where a secret lives: an environment variable or a 0600 file."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRefConfig:
        if bool(self.env) == bool(self.file):
            raise ValueError("give exactly one of env or file")
        return self

    def resolve(self, label: str) -> Secret:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"{label} comes from environment variable {self.env}, which is not set")
            return Secret(value, label)
        assert self.file is not None
        return Secret(read_secret_file(Path(self.file), label), label)


class EmailChannelConfig(_Strict):
    type: Literal["email"]
    host: str
    port: int = 25
    starttls: bool = False
    tls: bool = False  # implicit TLS (SMTPS, port 465)
    ca_file: str | None = None  # CA bundle for the server's certificate (default: the system's)
    username: str | None = None
    password: SecretRefConfig | None = None
    sender: str = Field(alias="from")
    to: list[str] | None = None  # fixed recipients; default: the people the message is for
    timeout: float = 10.0
    events: list[str] = list(EVENTS)
    template_dir: str | None = None


class WebhookChannelConfig(_Strict):
    type: Literal["webhook"]
    url: str
    template: str = "slack"  # a shipped template (jira, servicenow, slack, teams) or a file path
    secret: SecretRefConfig | None = None  # HMAC-SHA256 key for the signature header
    headers: dict[str, str] = {}
    timeout: float = 10.0
    events: list[str] = list(EVENTS)
    template_dir: str | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v


ChannelConfig = Annotated[EmailChannelConfig | WebhookChannelConfig, Field(discriminator="type")]


class QueueConfig(_Strict):
    name: str
    email: str | None = None


class TasksConfig(_Strict):
    thresholds_days: list[int] = list(DEFAULT_THRESHOLDS)
    by_class: dict[str, list[int]] = {}
    by_tier: dict[int, list[int]] = {}
    urgency: dict[Literal["high", "medium"], int] = {"high": 7, "medium": 30}
    default_queue: QueueConfig = QueueConfig(name="cmdb-default-queue")
    channels: list[str] | None = None
    actor: str = "scheduler"

    @field_validator("thresholds_days", "by_class", "by_tier")
    @classmethod
    def _non_negative(cls, v: Any) -> Any:
        lists = v.values() if isinstance(v, dict) else [v]
        for days in lists:
            if not days or any(d < 0 for d in days):
                raise ValueError("thresholds are non-empty lists of days >= 0 (0 = expired)")
        return v

    def thresholds(self, cls: str, tier: int | None) -> list[int]:
        """Thresholds in days, largest first: the tier's, else the class's, else the defaults."""
        days = (self.by_tier.get(tier) if tier is not None else None) or self.by_class.get(cls) or self.thresholds_days
        return sorted(set(days), reverse=True)

    def horizon_days(self) -> int:
        return max([*self.thresholds_days, *(d for v in self.by_class.values() for d in v),
                    *(d for v in self.by_tier.values() for d in v)])

    def urgency_for(self, days_left: float) -> str:
        if days_left <= self.urgency.get("high", 7):
            return "high"
        if days_left <= self.urgency.get("medium", 30):
            return "medium"
        return "low"


class DeliveryConfig(_Strict):
    max_attempts: int = Field(default=6, ge=1)
    backoff_seconds: float = Field(default=30.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    batch: int = Field(default=50, ge=1)
    hold_seconds: float = Field(default=300.0, gt=0)
    templates: str | None = None  # the user's template directory, searched before the shipped one


class JobConfig(_Strict):
    kind: Literal["expiry_check", "licence_check", "deliver", "prune", "scan", "snmp", "ssh", "devices", "aws"]
    cron: str
    targets: list[str] = []
    profiles: list[str] = []  # credential profiles (snmp, ssh, devices); AWS named profiles (aws)
    credentials: str | None = None  # the credential profiles file
    role_arns: list[str] = []  # aws: roles to assume with the first profile's credentials
    regions: list[str] = []  # aws: default the profile's region
    all_regions: bool = False  # aws: every region enabled in the account
    services: list[str] = []  # aws: default all
    endpoint_url: str | None = None  # aws: every API call to this URL (a proxy, a moto server)
    options: dict[str, Any] = {}
    lease_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        fields = v.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(v, second_at_beginning=len(fields) == 6):
            raise ValueError(f"bad cron expression {v!r}: five fields (minute hour day month weekday), "
                             "or six with seconds first")
        return v

    @model_validator(mode="after")
    def _targets(self) -> JobConfig:
        if self.kind in ("scan", "snmp", "ssh", "devices") and not self.targets:
            raise ValueError(f"a {self.kind} job needs targets")
        aws_only = [n for n in ("role_arns", "regions", "all_regions", "services", "endpoint_url") if getattr(self, n)]
        if self.kind != "aws" and aws_only:
            raise ValueError(f"{', '.join(aws_only)}: only an aws job takes these")
        if self.kind == "aws":
            self._check_aws()
        return self

    def _check_aws(self) -> None:
        if self.targets or self.credentials:
            raise ValueError("an aws job takes no targets or credentials file: give profiles, role_arns, regions")
        if self.regions and self.all_regions:
            raise ValueError("give regions or all_regions, not both")
        unknown = [s for s in self.services if s not in AWS_SERVICES]
        if unknown:
            raise ValueError(f"services: unknown {', '.join(unknown)}; choose from {', '.join(AWS_SERVICES)}")
        bad_arns = [a for a in self.role_arns if not a.startswith("arn:")]
        if bad_arns:
            raise ValueError(f"role_arns: {bad_arns[0]!r} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url: {self.endpoint_url!r} is not an http(s) URL")


class SchedulerConfig(_Strict):
    jobs: dict[str, JobConfig] = {}
    tick_seconds: float = Field(default=1.0, gt=0)


class AutomationConfig(_Strict):
    tasks: TasksConfig = TasksConfig()
    channels: dict[str, ChannelConfig] = {}
    delivery: DeliveryConfig = DeliveryConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    retention: RetentionSettings = RetentionSettings()  # the core's section, read for the prune job
    origin: str = "defaults"

    @model_validator(mode="after")
    def _known_channels(self) -> AutomationConfig:
        for name in self.tasks.channels or []:
            if name not in self.channels:
                raise ValueError(f"tasks.channels: unknown channel {name!r} (defined: "
                                 f"{', '.join(sorted(self.channels)) or 'none'})")
        for name, ch in self.channels.items():
            bad = [e for e in ch.events if e not in EVENTS]
            if bad:
                raise ValueError(f"channels.{name}.events: unknown event {bad[0]!r}; use {', '.join(EVENTS)}")
        return self

    def channels_for(self, event: str) -> list[str]:
        """Channel names that carry ``event`` notifications (tasks: ``tasks.channels`` when given)."""
        if event == "task" and self.tasks.channels is not None:
            return list(self.tasks.channels)
        return [n for n, ch in self.channels.items() if event in ch.events]

    def check_secrets(self) -> None:
        """Read every referenced secret once, so an unreadable one fails now, naming its channel."""
        for name, ch in self.channels.items():
            ref = ch.password if isinstance(ch, EmailChannelConfig) else ch.secret
            if ref is not None:
                ref.resolve(f"channel {name!r}: {'password' if isinstance(ch, EmailChannelConfig) else 'secret'}")


SECTIONS = ("tasks", "channels", "delivery", "scheduler")


def parse_config(doc: dict[str, Any], origin: str = "configuration", check_secrets: bool = True) -> AutomationConfig:
    """Validate the automation sections of a configuration mapping (other sections are ignored)."""
    section = {k: doc[k] for k in (*SECTIONS, "retention") if doc.get(k) is not None}
    try:
        cfg = AutomationConfig.model_validate({**section, "origin": origin})
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
            for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None
    if check_secrets:
        try:
            cfg.check_secrets()
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    return cfg


def load_config(path: str | Path | None = None, check_secrets: bool = True) -> AutomationConfig:
    """The automation sections of the configuration file in effect (``cmdb.config``: ``path``,
    ``CMDB_CONFIG``, the user's or the system's file, ``CMDB__TASKS__...`` overrides); defaults when
    there is none."""
    doc = load_document(path)
    return parse_config(doc.data, str(doc.path or "configuration"), check_secrets)


def validate_sections(raw: dict[str, Any]) -> AutomationConfig:
    """The sections alone, for ``cmdb config check`` (registered by the composition root)."""
    return AutomationConfig.model_validate(raw)
