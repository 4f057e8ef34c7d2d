"""Incident and change notifications through the outbox: a "start" message per stakeholder group, then
follow-ups (``update``, ``resolve``) to the same people.

The drafts of ``impact.notify`` (one per role: service owners, approvers, owners, support, subscribers)
are rendered with the ``start`` template and queued on every channel that carries the event. Who got
the start message is kept in its outbox record (thread, role, recipients), so a follow-up goes to
exactly those people even if the graph changed since. Templates are files users can replace
(``impact.render``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cmdb.errors import NotFoundError
from cmdb.store.base import GraphStore, iso
from cmdb.store.tasks import OutboxMessage
from impact.automation_config import AutomationConfig
from impact.notify import NotificationDraft
from impact.outbox import build_messages
from impact.render import render_text, template_dirs
from impact.stakeholders import Stakeholder

PHASES = ("update", "resolve")


def _recipients(stakeholders: Sequence[Stakeholder], role: str) -> list[tuple[str, str | None]]:
    return [(s.name, s.contact.get("email")) for s in stakeholders if role in s.roles]


def queue_start(store: GraphStore, config: AutomationConfig, event: str, thread: str,
                notes: Sequence[NotificationDraft], stakeholders: Sequence[Stakeholder], now: datetime,
                context: dict[str, Any] | None = None) -> list[OutboxMessage]:
    """Queue the "start" message of ``thread`` (an incident or change key) for every stakeholder group."""
    dirs = template_dirs(config.delivery.templates)
    messages: list[OutboxMessage] = []
    for note in notes:
        recipients = _recipients(stakeholders, note.role)
        subject, body = render_text("start", {"subject": note.subject, "body": note.body, "thread": thread,
                                              "role": note.role, "event": event}, dirs)
        messages += build_messages(
            config, event, recipients=recipients, subject=subject, body=body, key=f"{thread}:start:{note.role}",
            now=now, context={**(context or {}), "issue_type": "Incident" if event == "incident" else "Task"},
            meta={"thread": thread, "phase": "start", "role": note.role, "subject": note.subject,
                  "recipients": [list(r) for r in recipients]})
    created = store.enqueue_messages(messages)
    return [m for m, new in zip(messages, created, strict=True) if new]


def queue_followup(store: GraphStore, config: AutomationConfig, thread: str, phase: str, note: str | None,
                   now: datetime) -> list[OutboxMessage]:
    """Queue an ``update`` or ``resolve`` message to the groups that got the start message of ``thread``."""
    starts = [m for m in store.list_messages(limit=1_000_000)
              if m.meta.get("thread") == thread and m.meta.get("phase") == "start"]
    if not starts:
        raise NotFoundError(f"no notifications were queued for {thread!r}; start them with "
                            f"`cmdb impact incident ... --notify --record {thread}` (or change ... --notify --record)")
    groups: dict[str, OutboxMessage] = {}
    for m in sorted(starts, key=lambda m: m.created_at):
        groups.setdefault(str(m.meta["role"]), m)
    dirs = template_dirs(config.delivery.templates)
    at = iso(now)
    messages: list[OutboxMessage] = []
    for role, start in groups.items():
        recipients = [(str(n), e) for n, e in start.meta.get("recipients", [])]
        subject, body = render_text(phase, {"subject": start.meta.get("subject", start.subject), "note": note or "",
                                            "thread": thread, "role": role, "at": at}, dirs)
        messages += build_messages(config, str(start.meta.get("event", "incident")), recipients=recipients,
                                   subject=subject, body=body, key=f"{thread}:{phase}:{at}:{role}", now=now,
                                   meta={"thread": thread, "phase": phase, "role": role,
                                         "recipients": start.meta.get("recipients", [])})
    created = store.enqueue_messages(messages)
    return [m for m, new in zip(messages, created, strict=True) if new]
