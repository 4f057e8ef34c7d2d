"""Webhooks: an HTTP POST of the rendered JSON, signed with HMAC-SHA256 over the exact body.

Headers: ``X-CMDB-Signature: sha256=<hex>`` (when a secret is configured; the receiver recomputes it
with the shared key), ``Idempotency-Key`` and ``X-CMDB-Delivery`` (the outbox message id). Any 2xx is
delivered; anything else, or no answer, is a ``DeliveryError`` and the worker retries later.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request

from cmdb.store.tasks import OutboxMessage
from impact.automation_config import WebhookChannelConfig
from impact.channels.base import IDEMPOTENCY_HEADER, DeliveryError

SIGNATURE_HEADER = "X-CMDB-Signature"


def signature(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, name: str, config: WebhookChannelConfig) -> None:
        self.name = name
        self.config = config

    def headers(self, message: OutboxMessage, body: bytes) -> dict[str, str]:
        out = {"Content-Type": "application/json", "User-Agent": "cmdb-outbox/1",
               IDEMPOTENCY_HEADER: message.idempotency_key, "X-CMDB-Delivery": message.id, **self.config.headers}
        if self.config.secret is not None:
            key = self.config.secret.resolve(f"channel {self.name!r}: secret")
            out[SIGNATURE_HEADER] = signature(key.reveal(), body)
        return out

    def send(self, message: OutboxMessage) -> None:
        body = message.payload.encode()
        request = urllib.request.Request(self.config.url, data=body, method="POST",
                                         headers=self.headers(message, body))
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"channel {self.name!r}: {self.config.url} answered {exc.code} {exc.reason}") \
                from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"channel {self.name!r}: cannot reach {self.config.url}: {reason}") from None
