"""Delivery channels: how one outbox message leaves the building (``email``, ``webhook``).

A channel sends one rendered message or raises ``DeliveryError`` saying why; the delivery worker
(``impact.delivery``) decides about retries. Every message carries its idempotency key (a header and
the payload), so a receiver that saw it already can drop the repeat a retry may cause.
"""

from __future__ import annotations

from typing import Protocol

from cmdb.errors import CmdbError
from cmdb.store.tasks import OutboxMessage
from impact.automation_config import EmailChannelConfig, WebhookChannelConfig

IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(CmdbError):
    """A channel could not deliver a message (the receiver is down, refused it, or answered an error)."""


class Channel(Protocol):
    name: str

    def send(self, message: OutboxMessage) -> None:
        """Deliver ``message`` or raise ``DeliveryError``."""


def open_channel(name: str, config: EmailChannelConfig | WebhookChannelConfig) -> Channel:
    if isinstance(config, EmailChannelConfig):
        from impact.channels.email import EmailChannel

        return EmailChannel(name, config)
    from impact.channels.webhook import WebhookChannel

    return WebhookChannel(name, config)
