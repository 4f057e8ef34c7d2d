"""The AWS wire: sessions per account, clients with botocore's standard retry mode, and the one table
that turns botocore exceptions into run outcomes.

A ``ScopeReader`` makes the calls of one scope (account, region, service). Each call either lands its
JSON-clean answer in ``raw`` or a ``CallFailure`` in ``failures``; the service's ``get_*`` goes on with
its other calls, the transform works on what arrived, and the scope is complete only with no failure.
Credentials come from named profiles or an assumed role: never from this code, never into a log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from discovery.collector import OutcomeTable, outcome_of
from discovery.outcomes import Outcome

# botocore error codes -> outcome; anything else is ``error``.
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure", "InvalidClientTokenId",
    "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
    "OptInRequired", "UnauthorizedAccess", "AccessDeniedForDependency", "InvalidAccessKeyId", "Forbidden",
})
THROTTLED_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "PriorRequestNotComplete", "Throttled",
})
# A scope's outcome is its worst call's: denied beats throttled beats error (what an operator must fix first).
SEVERITY = {Outcome.OK: 0, Outcome.ERROR: 1, Outcome.THROTTLED: 2, Outcome.DENIED: 3}


class AwsCallError(Exception):
    """A botocore ``ClientError`` named by what its error code means, so the outcomes table (which
    matches exception types) can tell a denial from throttling; ``code`` is botocore's."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class AwsDenied(AwsCallError):
    """The credentials may not make the call (AccessDenied, UnauthorizedOperation ...)."""


class AwsThrottled(AwsCallError):
    """Still refused for rate after botocore's standard retries."""


def typed(exc: BaseException) -> BaseException:
    """A ``ClientError`` as ``AwsDenied``/``AwsThrottled``/``AwsCallError`` by its code; others as they are."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return exc
    err = exc.response.get("Error", {})
    code = str(err.get("Code") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = f"{code or status}: {err.get('Message') or ''}".strip().rstrip(":")
    denied = code in DENIED_CODES or (not code and status in (401, 403))
    throttled = code in THROTTLED_CODES or status == 429
    kind = AwsDenied if denied else AwsThrottled if throttled else AwsCallError
    found = kind(message, code)
    found.__cause__ = exc
    return found


def _outcomes() -> OutcomeTable:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    return (
        (AwsDenied, Outcome.DENIED),
        (AwsThrottled, Outcome.THROTTLED),
        (NoCredentialsError, Outcome.DENIED),
        (ProfileNotFound, Outcome.DENIED),
        (AwsCallError, Outcome.ERROR),
        (ClientError, Outcome.ERROR),
        (BotoCoreError, Outcome.ERROR),  # endpoint and connection errors too: the API, not a host, failed
    )


AWS_OUTCOMES: OutcomeTable = _outcomes()


def describe(exc: BaseException) -> str:
    if isinstance(exc, AwsCallError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def classify(exc: BaseException) -> tuple[Outcome, str]:
    """(outcome, message) for an exception raised by a boto3 call, by the table ``AWS_OUTCOMES``."""
    found = typed(exc)
    return outcome_of(found, AWS_OUTCOMES), describe(found)


@dataclass(frozen=True)
class CallFailure:
    call: str
    error: BaseException  # typed (``typed``)

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.error, AWS_OUTCOMES)

    @property
    def message(self) -> str:
        return describe(self.error)

    def as_json(self) -> dict[str, str]:
        """What a recorded reading keeps of it."""
        return {"call": self.call, "outcome": str(self.outcome), "message": self.message}


@dataclass(frozen=True)
class AccountSpec:
    """One account to discover: a named profile (or the default chain) and, optionally, a role to assume."""

    profile: str | None = None
    role_arn: str | None = None

    @property
    def label(self) -> str:
        return self.role_arn or self.profile or "default"


class CallCounter:
    """API calls made, per operation (``ec2.DescribeInstances``), counted by a botocore event hook."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, model: Any = None, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}" if model is not None else "?"
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class AwsConnection:
    """Sessions and clients for the accounts of one run; clients are cached per (account, service, region)."""

    endpoint_url: str | Mapping[str, str] | None = None  # one URL, or region -> URL (tests, proxies)
    max_attempts: int = 5
    counter: CallCounter = field(default_factory=CallCounter)
    _sessions: dict[AccountSpec, Any] = field(default_factory=dict)
    _clients: dict[tuple[AccountSpec, str, str], Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def endpoint_for(self, region: str) -> str | None:
        if self.endpoint_url is None or isinstance(self.endpoint_url, str):
            return self.endpoint_url
        return self.endpoint_url.get(region) or self.endpoint_url.get("*")

    def session(self, account: AccountSpec) -> Any:
        import boto3

        with self._lock:
            found = self._sessions.get(account)
            if found is None:
                found = self._sessions[account] = self._new_session(account, boto3)
            return found

    def _new_session(self, account: AccountSpec, boto3: Any) -> Any:
        base = boto3.Session(profile_name=account.profile) if account.profile else boto3.Session()
        if account.role_arn:
            sts = base.client("sts", config=self._config(), endpoint_url=self.endpoint_for("us-east-1"),
                              region_name=base.region_name or "us-east-1")
            creds = sts.assume_role(RoleArn=account.role_arn, RoleSessionName="cmdb-discovery")["Credentials"]
            base = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"], region_name=base.region_name)
        base.events.register("before-call", self.counter)
        return base

    def _config(self) -> Any:
        from botocore.config import Config

        return Config(retries={"mode": "standard", "max_attempts": self.max_attempts}, connect_timeout=10,
                      read_timeout=30, user_agent_extra="cmdb-discovery")

    def client(self, account: AccountSpec, service: str, region: str) -> Any:
        """A cached client; made under the lock (boto3 sessions are not thread-safe, clients are)."""
        key = (account, service, region)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                api_region = "us-east-1" if region == "global" else region
                found = self._clients[key] = self.session(account).client(
                    service, region_name=api_region, config=self._config(), endpoint_url=self.endpoint_for(api_region))
            return found

    def account_id(self, account: AccountSpec) -> str:
        """The account number behind a profile or role (one STS call)."""
        return str(self.client(account, "sts", "us-east-1").get_caller_identity()["Account"])

    def enabled_regions(self, account: AccountSpec) -> list[str]:
        answer = self.client(account, "ec2", "us-east-1").describe_regions(AllRegions=False)
        return sorted(r["RegionName"] for r in answer["Regions"])


def jsonable(value: Any) -> Any:
    """Responses as JSON-clean data (datetimes as ISO text, no ResponseMetadata): what tests/data records."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


class ScopeReader:
    """The calls of one scope. ``raw`` holds each named call's answer; ``failures`` what went wrong."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self.client_for = client_for
        self.raw: dict[str, Any] = {}
        self.failures: list[CallFailure] = []

    def _fail(self, name: str, exc: BaseException) -> None:
        """The call's exception is kept (its outcome comes from ``AWS_OUTCOMES``); the scope goes on."""
        self.failures.append(CallFailure(name, typed(exc)))

    def pages(self, service: str, operation: str, key: str, **kwargs: Any) -> list[Any] | None:
        """Every item under ``key`` over all pages of a paginated operation; None when a call failed."""
        try:
            paginator = self.client_for(service).get_paginator(operation)
            items: list[Any] = []
            for page in paginator.paginate(**kwargs):
                items.extend(jsonable(page.get(key) or []))
            return items
        except Exception as exc:
            self._fail(f"{service}.{operation}", exc)
            return None

    def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            answer = getattr(self.client_for(service), operation)(**kwargs)
        except Exception as exc:
            self._fail(f"{service}.{operation}", exc)
            return None
        result: dict[str, Any] = jsonable(answer)
        return result

    def keep(self, name: str, items: Any) -> None:
        """Stores ``items`` (when the call worked) under ``name``."""
        if items is not None:
            self.raw[name] = items

    def worst(self) -> CallFailure | None:
        """The failure an operator must fix first (denied, then throttled, then error)."""
        return max(self.failures, key=lambda f: SEVERITY.get(f.outcome, 1)) if self.failures else None

    def outcome(self) -> tuple[Outcome, str]:
        worst = self.worst()
        if worst is None:
            return Outcome.OK, ""
        return worst.outcome, partial_detail([f.as_json() for f in self.failures])


def partial_detail(failures: list[dict[str, str]]) -> str:
    """``partial: <calls> failed (<worst message>)`` from recorded failures."""
    worst = max(failures, key=lambda f: SEVERITY.get(Outcome(f["outcome"]), 1))
    calls = ", ".join(sorted({f["call"] for f in failures}))
    return f"partial: {calls} failed ({worst['message']})"
