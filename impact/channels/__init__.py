"""Delivery channels: how one outbox message leaves the building (``email``, ``webhook``).

A channel sends one rendered message or raises ``DeliveryError`` saying why; the delivery worker
(``impact.delivery``) decides about retries. Every message carries its idempotency key (a header and
the payload), so a receiver that saw it already can drop the repeat a retry may cause.
"""

from __future__ import annotations

from impact.automation_config import EmailChannelConfig, WebhookChannelConfig
from impact.channels.base import IDEMPOTENCY_HEADER, Channel, DeliveryError

__all__ = ["IDEMPOTENCY_HEADER", "Channel", "DeliveryError", "open_channel"]


def open_channel(name: str, config: EmailChannelConfig | WebhookChannelConfig) -> Channel:
    if isinstance(config, EmailChannelConfig):
        from impact.channels.email import EmailChannel

        return EmailChannel(name, config)
    from impact.channels.webhook import WebhookChannel

    return WebhookChannel(name, config)
