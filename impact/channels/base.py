"""What every channel shares: the error it raises, the idempotency header, the channel shape."""

from __future__ import annotations

from typing import Protocol

from cmdb.errors import CmdbError
from cmdb.store.tasks import OutboxMessage

IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(CmdbError):
    """A channel could not deliver a message (the receiver is down, refused it, or answered an error)."""


class Channel(Protocol):
    name: str

    def send(self, message: OutboxMessage) -> None:
        """Deliver ``message`` or raise ``DeliveryError``."""
