"""Turning an event into outbox messages: one per channel that carries it, rendered now, keyed for idempotency.

A message is rendered when it is queued (the outbox keeps the payload a receiver will get), and its
idempotency key says what it is about (task, event, threshold, assignee, channel), so raising the same
notice twice, from two processes or two cycles, queues it once: the store refuses a repeated key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cmdb.store.base import parse_iso
from cmdb.store.tasks import OutboxMessage, Task, new_message
from impact.assign import recipient_of
from impact.automation_config import AutomationConfig, EmailChannelConfig
from impact.render import render_text, render_webhook, template_dirs

TASK_HEADLINES = {
    "raised": "New task for you",
    "escalated": "Task escalated",
    "reassigned": "Task reassigned to you",
}
KIND_LABELS = {"certificate_expiry": "certificate expiry", "licence_expiry": "licence expiry",
               "licence_compliance": "licence compliance"}


def build_messages(
    cfg: AutomationConfig,
    event: str,
    *,
    recipients: Sequence[tuple[str, str | None]],
    subject: str,
    body: str,
    key: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
    task_id: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> list[OutboxMessage]:
    """One message per channel carrying ``event``; e-mail channels go to the recipients that have an address."""
    out = []
    for name in cfg.channels_for(event):
        ch = cfg.channels[name]
        msg_key = f"{key}:{name}"
        if isinstance(ch, EmailChannelConfig):
            to = list(ch.to or dict.fromkeys(e for _n, e in recipients if e))
            if not to:
                continue
            recipient, payload = ", ".join(to), body
        else:
            dirs = template_dirs(ch.template_dir, cfg.delivery.templates)
            payload = render_webhook(ch.template, {**(context or {}), "subject": subject, "body": body, "kind": event,
                                                   "idempotency_key": msg_key}, dirs)
            recipient = ch.url
        out.append(new_message(name, recipient, subject, payload, msg_key, now=now, task_id=task_id,
                               meta={"event": event, **(meta or {})}))
    return out


def days_left(task: Task, now: datetime) -> int:
    return int((parse_iso(task.due) - now).total_seconds() // 86400)


def task_messages(cfg: AutomationConfig, task: Task, event: str, now: datetime) -> list[OutboxMessage]:
    """The notice to a task's assignee that it was raised, escalated or reassigned to them."""
    name, email = recipient_of(task.assignee)
    headline = f"{TASK_HEADLINES.get(event, event)}: {KIND_LABELS.get(task.kind, task.kind)}"
    dirs = template_dirs(cfg.delivery.templates)
    left = days_left(task, now)
    subject, body = render_text("task", {"task": task, "headline": headline, "assignee_name": name or "Hello",
                                         "days_left": left, "event": event}, dirs)
    who = task.assignee.person_id or task.assignee.team_id or task.assignee.queue or "nobody"
    urgency = str(task.details.get("urgency", "medium"))
    context = {"priority": task.priority, "urgency": urgency, "impact": task.details.get("impact"),
               "task": task, "issue_type": "Task"}
    return build_messages(cfg, "task", recipients=[(name, email)], subject=subject, body=body,
                          key=f"{task.id}:{event}:{task.threshold}:{who}", now=now, context=context,
                          task_id=task.id, meta={"task_event": event, "assignee": name})
