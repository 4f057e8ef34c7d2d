"""The delivery worker: claims due outbox messages, sends each through its channel, records the outcome.

Nothing is lost: a message leaves the outbox only as ``sent`` or, after ``delivery.max_attempts``
failures, ``dead`` (shown by ``cmdb outbox list``, revived by ``cmdb outbox retry ID``). A failure
schedules the next attempt with exponential backoff (``backoff_seconds`` doubling up to
``backoff_max_seconds``). Claiming pushes a message's next attempt ahead in the same transaction, so
two workers never send it at once; a worker that dies mid-send leaves it to be claimed again when
the hold lapses, and the receiver drops the repeat by its idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cmdb.errors import CmdbError
from cmdb.store.base import GraphStore
from cmdb.store.tasks import backoff_delay
from impact.automation_config import AutomationConfig
from impact.channels import Channel, DeliveryError, open_channel

log = logging.getLogger("cmdb.delivery")


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {"sent": self.sent, "retrying": self.retrying, "dead": self.dead, "errors": self.errors}


def deliver_due(store: GraphStore, config: AutomationConfig, now: datetime | None = None,
                limit: int | None = None) -> DeliveryReport:
    """One pass: every message due at ``now`` (default the wall clock), up to ``limit`` (default ``batch``)."""
    now = now or datetime.now(UTC)
    dcfg = config.delivery
    report = DeliveryReport()
    channels: dict[str, Channel] = {}
    for msg in store.claim_messages(now, limit=limit or dcfg.batch, hold_seconds=dcfg.hold_seconds):
        try:
            ch_cfg = config.channels.get(msg.channel)
            if ch_cfg is None:
                raise DeliveryError(f"channel {msg.channel!r} is not configured any more; "
                                    "add it back and run `cmdb outbox retry`")
            channel = channels.get(msg.channel) or channels.setdefault(msg.channel, open_channel(msg.channel, ch_cfg))
            channel.send(msg)
        except CmdbError as exc:  # DeliveryError, or a secret that cannot be read now (ConfigError)
            error = str(exc)
            report.errors.append(f"{msg.id}: {error}")
            if msg.attempts >= dcfg.max_attempts:
                store.mark_failed(msg.id, error, now, retry_at=None)
                report.dead += 1
                log.warning("outbox message %s is dead after %d attempts: %s", msg.id, msg.attempts, error)
            else:
                retry_at = now + backoff_delay(msg.attempts, dcfg.backoff_seconds, dcfg.backoff_max_seconds)
                store.mark_failed(msg.id, error, now, retry_at=retry_at)
                report.retrying += 1
            continue
        store.mark_sent(msg.id, now)
        report.sent += 1
    return report


def deliver_until_idle(store: GraphStore, config: AutomationConfig, clock: Callable[[], datetime],
                       max_passes: int = 100) -> DeliveryReport:
    """Passes until nothing is due now (what a scheduled delivery job does)."""
    total = DeliveryReport()
    for _ in range(max_passes):
        rep = deliver_due(store, config, clock())
        total.sent += rep.sent
        total.retrying += rep.retrying
        total.dead += rep.dead
        total.errors += rep.errors
        if rep.sent == 0:  # nothing claimed, or all of it failed (not due again now)
            break
    return total
