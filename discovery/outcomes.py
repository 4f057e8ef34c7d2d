"""What happened to one target of a discovery run.

Collectors translate library exceptions (pysnmp, paramiko, netmiko, ssl, socket) into a
``TargetError`` carrying one ``Outcome`` at the boundary, chaining the original; the run records
the outcome and goes on with the next target. Messages never contain a secret: profiles are
named, their values never quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import CmdbError


class Outcome(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    AUTH_FAILED = "auth_failed"
    UNREACHABLE = "unreachable"
    PARSE_ERROR = "parse_error"
    HOST_KEY_CHANGED = "host_key_changed"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    DENIED = "denied"  # the credentials may not make a call (cloud APIs: AccessDenied, UnauthorizedOperation)
    THROTTLED = "throttled"  # the API kept refusing for rate after the client's retries
    REJECTED = "rejected"  # the collector's batch was refused by ingest (a bug or a schema mismatch)
    ERROR = "error"


class TargetError(CmdbError):
    """A target failed in a known way; ``outcome`` says how. Raised by collectors, caught by the run."""

    def __init__(self, outcome: Outcome, message: str, profile: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.profile = profile


@dataclass
class TargetResult:
    """A collector's answer for one target.

    ``batch`` is what ``transform`` made of the raw facts (None when nothing was collected);
    ``facts`` keeps transformed data that a run-level step needs after every target is done (the
    SSH collector's sockets, for dependency mapping). ``profile`` names the credential that worked.
    """

    target: str
    outcome: Outcome = Outcome.OK
    detail: str = ""
    profile: str | None = None
    batch: Batch | None = None
    facts: dict[str, Any] = field(default_factory=dict)
