"""E-mail over SMTP: plain, STARTTLS or implicit TLS, with optional login; the password by reference.

The ``Message-ID`` is derived from the idempotency key and an ``Idempotency-Key`` header repeats it,
so a mail system (or a person) can tell a retried message from a new one.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from cmdb.store.tasks import OutboxMessage
from impact.automation_config import EmailChannelConfig
from impact.channels.base import IDEMPOTENCY_HEADER, DeliveryError


class EmailChannel:
    def __init__(self, name: str, config: EmailChannelConfig) -> None:
        self.name = name
        self.config = config

    def compose(self, message: OutboxMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        domain = self.config.sender.rpartition("@")[2] or "cmdb.invalid"
        mail["Message-ID"] = f"<{hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]}@{domain}>"
        mail[IDEMPOTENCY_HEADER] = message.idempotency_key
        mail.set_content(message.payload)
        return mail

    def send(self, message: OutboxMessage) -> None:
        cfg = self.config
        mail = self.compose(message)
        context = ssl.create_default_context(cafile=cfg.ca_file)
        try:
            smtp: smtplib.SMTP = (smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context)
                                  if cfg.tls else smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout))
            with smtp:
                if cfg.starttls:
                    smtp.starttls(context=context)
                if cfg.username:
                    password = cfg.password.resolve(f"channel {self.name!r}: password") if cfg.password else None
                    smtp.login(cfg.username, password.reveal() if password else "")
                smtp.send_message(mail)
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"channel {self.name!r}: SMTP {cfg.host}:{cfg.port} refused the message: {exc}") \
                from exc
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"channel {self.name!r}: cannot reach SMTP {cfg.host}:{cfg.port}: {exc}") from exc
