"""``cmdb expiry check``, ``cmdb outbox ...``, ``cmdb scheduler`` and ``cmdb incidents update|resolve``.

The parts of the product that act on their own, from the command line. ``register(app)`` adds them to
the root app (one line in the composition root); the store URL comes from the root ``--store``.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import BadInputError, NotFoundError
from cmdb.history import parse_time
from cmdb.store import default_store_url
from cmdb.store.base import GraphStore, SearchQuery, iso, parse_iso
from cmdb.store.tasks import MESSAGE_STATES
from impact.automation_config import AutomationConfig, load_config

expiry_app = typer.Typer(no_args_is_help=True, help="Expiry tasks for certificates and licences.")
outbox_app = typer.Typer(no_args_is_help=True, help="The notification outbox: what was sent, what waits, what died.")
incidents_app = typer.Typer(no_args_is_help=True, help="Follow-ups to the people an incident notified.")
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Configuration file (default: CMDB_CONFIG).")]


def register(app: typer.Typer) -> None:
    app.add_typer(expiry_app, name="expiry")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(incidents_app, name="incidents")
    app.command("scheduler")(scheduler)


def _store(ctx: typer.Context, create: bool = False) -> AbstractContextManager[GraphStore]:
    return opened_store(ctx.find_root().params.get("store"), create=create)


def _now(at: str | None) -> datetime:
    return parse_iso(parse_time(at)) if at else datetime.now(UTC)


def _config(path: Path | None) -> AutomationConfig:
    return load_config(path)


@expiry_app.command("check")
def expiry_check(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")] = False,
    at: Annotated[str | None, typer.Option(help="Run as if it were this time (default now).")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one expiry cycle now: raise, escalate, reassign, resolve renewed and cancel retired tasks."""
    from impact.expiry_tasks import run_expiry_cycle

    cfg = _config(config)
    with _store(ctx) as store:
        rep = run_expiry_cycle(store, _now(at), cfg, dry_run=dry_run)
    if as_json:
        emit_json({**rep.summary(), "actions": rep.actions})
        return
    for a in rep.actions:
        extra = ", ".join(f"{k} {v}" for k, v in a.items() if k not in ("action", "task", "ci"))
        out.print(f"{a['action']:<10} {a['ci']}" + (f" ({a['task']})" if a["task"] else "") + (f": {extra}" if extra
                  else ""), highlight=False)
    s = rep.summary()
    out.print(("dry run: " if dry_run else "") + ", ".join(f"{s[k]} {k}" for k in (
        "raised", "escalated", "reassigned", "resolved", "cancelled", "unchanged", "queued")), highlight=False)


def _message_dict(m: Any) -> dict[str, Any]:
    return {"id": m.id, "channel": m.channel, "recipient": m.recipient, "subject": m.subject, "state": m.state,
            "attempts": m.attempts, "next_attempt_at": m.next_attempt_at, "last_error": m.last_error,
            "sent_at": m.sent_at, "task_id": m.task_id, "idempotency_key": m.idempotency_key,
            "created_at": m.created_at}


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="pending, sent or dead.")] = None,
    limit: int = 200,
    as_json: JsonOpt = False,
) -> None:
    """Outbox messages, newest last; dead ones are those that ran out of attempts."""
    if state is not None and state not in MESSAGE_STATES:
        raise BadInputError(f"--state {state!r}: use one of {', '.join(MESSAGE_STATES)}")
    with _store(ctx) as store:
        items = store.list_messages(state, limit=limit)
    if as_json:
        emit_json([_message_dict(m) for m in items])
        return
    table = Table()
    for col in ("id", "state", "channel", "to", "subject", "attempts", "next / sent", "last error"):
        table.add_column(col, overflow="fold")
    for m in items:
        table.add_row(m.id, m.state, m.channel, m.recipient, m.subject, str(m.attempts),
                      m.sent_at or m.next_attempt_at or "", m.last_error or "")
    out.print(table)
    out.print(f"{len(items)} messages")


@outbox_app.command("retry")
def outbox_retry(ctx: typer.Context, message_id: Annotated[str, typer.Argument(help="Outbox message id.")],
                 as_json: JsonOpt = False) -> None:
    """Send a dead (or waiting) message again at the next delivery, attempts counted afresh."""
    with _store(ctx) as store:
        m = store.retry_message(message_id, datetime.now(UTC))
    if as_json:
        emit_json(_message_dict(m))
    else:
        out.print(f"{m.id} is {m.state} again; it goes out with the next delivery")


@outbox_app.command("deliver")
def outbox_deliver(ctx: typer.Context, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """One delivery pass now: every due message through its channel."""
    from impact.delivery import deliver_until_idle

    cfg = _config(config)
    with _store(ctx) as store:
        rep = deliver_until_idle(store, cfg, lambda: datetime.now(UTC))
    if as_json:
        emit_json(rep.summary())
        return
    out.print(f"{rep.sent} sent, {rep.retrying} to retry, {rep.dead} dead", highlight=False)
    for e in rep.errors:
        out.print(f"  {e}", highlight=False)


def _followup(ctx: typer.Context, key: str, phase: str, note: str | None, as_json: bool) -> None:
    from impact.incident_notify import queue_followup
    from impact.records import record_incident, records_schema

    cfg = _config(None)
    now = datetime.now(UTC)
    with _store(ctx) as store:
        queued = queue_followup(store, cfg, key, phase, note, now)
        if phase == "resolve" and "Incident" in records_schema(store).classes:
            page = store.search(SearchQuery(classes=["Incident"], attrs={"key": key}, limit=1))
            for rec in page.items:  # the stored record, if the incident was recorded
                record_incident(store, key, [], str(rec.attrs.get("opened_at") or iso(now)), state="resolved")
    if as_json:
        emit_json({"thread": key, "phase": phase, "queued": [_message_dict(m) for m in queued]})
    else:
        out.print(f"{phase} for {key}: {len(queued)} messages queued", highlight=False)


@incidents_app.command("update")
def incidents_update(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The incident key the start notification was sent under.")],
    note: Annotated[str, typer.Option("--note", help="What is new.")],
    as_json: JsonOpt = False,
) -> None:
    """Queue an update to everyone the incident's start notification went to."""
    _followup(ctx, key, "update", note, as_json)


@incidents_app.command("resolve")
def incidents_resolve(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The incident key.")],
    note: Annotated[str | None, typer.Option("--note", help="Cause and fix, for the record.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue the resolution to everyone the start notification went to (and mark the record resolved)."""
    _followup(ctx, key, "resolve", note, as_json)


def scheduler(
    ctx: typer.Context,
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Run every job once now, then exit.")] = False,
) -> None:
    """Run the configured jobs on their cron expressions until SIGTERM (the job in flight finishes)."""
    from impact.scheduler import Scheduler

    cfg = _config(config)
    if not cfg.scheduler.jobs:
        raise NotFoundError(f"{cfg.origin}: no scheduler.jobs configured; add a scheduler: section "
                            f"(see `cmdb scheduler --help`) and name the file with --config or CMDB_CONFIG")
    from impact.scheduler_jobs import check_jobs

    check_jobs(cfg)
    url = ctx.find_root().params.get("store") or os.environ.get("CMDB_STORE") or default_store_url()
    with _store(ctx, create=True) as store:  # its discovery jobs may be the first to write
        sched = Scheduler(store, url, cfg)
        if once:
            sched.run_once()
            return
        sched.install_signal_handlers()
        sched.run()
