"""``cmdb tasks ...``: list, show, acknowledge, resolve and cancel tasks, as tables or ``--json``.

Registered on the root app by ``cmdb/cli.py`` (``app.add_typer(tasks_app, name="tasks")``). The store
URL comes from the root ``--store`` option through the click context. ``--at`` sets the clock for
``--overdue`` and transitions (tests inject it; people leave it out).
"""

from __future__ import annotations

import getpass
import os
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import BadInputError, NotFoundError
from cmdb.history import parse_time, resolve_ci
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore, parse_iso
from cmdb.store.tasks import TASK_STATES, Task, TaskNotFoundError, TaskQuery

tasks_app = typer.Typer(no_args_is_help=True, help="Tasks raised for expiring certificates and licences.")
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
AtOpt = Annotated[str | None, typer.Option("--at", help="The time to act at (ISO-8601); default now.")]
NoteOpt = Annotated[str, typer.Option("--note", help="Why; recorded with the transition.")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who acts; default CMDB_ACTOR or the login name.")]
PAGE = 1000


def _store(ctx: typer.Context) -> AbstractContextManager[GraphStore]:
    return opened_store(ctx.find_root().params.get("store"))


def _now(at: str | None) -> datetime:
    return parse_iso(parse_time(at)) if at else datetime.now(UTC)


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("CMDB_ACTOR") or getpass.getuser()


def task_dict(t: Task) -> dict[str, Any]:
    return asdict(t)


def _assignee(t: Task) -> str:
    a = t.assignee
    who = a.person_name or a.person_id or ""
    team = a.team_name or a.team_id or a.queue or ""
    return " / ".join(x for x in (who, team) if x) or "-"


def _all(store: GraphStore, query: TaskQuery) -> list[Task]:
    found: list[Task] = []
    while True:
        query.offset = len(found)
        page = store.list_tasks(query)
        found.extend(page)
        if len(page) < query.limit:
            return found


def _team_tasks(store: GraphStore, team: str, query: TaskQuery) -> list[Task]:
    """A team by id, name or identity value; else a queue name (tasks of the default queue)."""
    try:
        team_id: str | None = resolve_ci(store, store_schema(store), team)
    except NotFoundError:
        team_id = None
    if team_id is not None:
        query.team = team_id
        return _all(store, query)
    tasks = [t for t in _all(store, query) if team in (t.assignee.queue, t.assignee.team_name)]
    if not tasks and not store.find_by_name(team):
        raise NotFoundError(f"no team or queue {team!r}; give a Team's id or name, or a queue name")
    return tasks


@tasks_app.command("list")
def list_tasks(
    ctx: typer.Context,
    mine: Annotated[str | None, typer.Option("--mine", help="Tasks assigned to the person with this e-mail.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Tasks of this team (id or name) or queue.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open tasks past their due time.")] = False,
    state: Annotated[list[str] | None, typer.Option("--state", help="open, acknowledged, resolved, cancelled.")]
    = None,
    kind: Annotated[str | None, typer.Option("--kind", help="e.g. certificate_expiry, licence_compliance.")] = None,
    at: AtOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tasks by due date; open and acknowledged ones unless --state says otherwise."""
    for s in state or []:
        if s not in TASK_STATES:
            raise BadInputError(f"--state {s!r}: use one of {', '.join(TASK_STATES)}")
    query = TaskQuery(states=list(state) if state else ["open", "acknowledged"], kinds=[kind] if kind else None,
                      overdue_at=_now(at) if overdue else None, limit=PAGE)
    with _store(ctx) as store:
        if mine:
            query.person = resolve_ci(store, store_schema(store), mine)
        tasks = _team_tasks(store, team, query) if team else _all(store, query)
    if as_json:
        emit_json([task_dict(t) for t in tasks])
        return
    table = Table("id", "kind", "CI", "state", "priority", "threshold", "due", "assignee", "reason")
    for column in table.columns:
        column.overflow = "fold"  # ids and times wrap, never cut
    for t in tasks:
        table.add_row(t.id, t.kind, t.ci_name or t.ci_id, t.state, t.priority, t.threshold or "-", t.due,
                      _assignee(t), t.assignee.reason)
    out.print(table)
    out.print(f"{len(tasks)} task(s)")


def _get(store: GraphStore, task_id: str) -> Task:
    task = store.get_task(task_id)
    if task is None:
        raise TaskNotFoundError(f"no task {task_id}; `cmdb tasks list` shows the tasks")
    return task


def _print_task(t: Task) -> None:
    out.print(f"[bold]{t.id}[/] {t.kind} on {t.ci_name or t.ci_id} ({t.ci_id})", highlight=False)
    out.print(f"state {t.state}, priority {t.priority}, threshold {t.threshold or '-'}, expiry {t.expiry or '-'},"
              f" due {t.due}", highlight=False)
    out.print(f"assignee {_assignee(t)}: {t.assignee.reason}", highlight=False)
    if t.services_at_risk:
        out.print("services at risk: " + ", ".join(f"{s.get('name')} (tier {s.get('tier')})"
                                                   for s in t.services_at_risk), highlight=False)
    table = Table("at", "actor", "from", "to", "note")
    for column in table.columns:
        column.overflow = "fold"
    for tr in t.transitions:
        table.add_row(tr.at, tr.actor, tr.from_state or "-", tr.to_state, tr.note)
    out.print(table)


@tasks_app.command("show")
def show(ctx: typer.Context, task_id: Annotated[str, typer.Argument(help="Task id.")],
         as_json: JsonOpt = False) -> None:
    """One task with its assignee, the reason, the services at risk and every transition."""
    with _store(ctx) as store:
        task = _get(store, task_id)
    if as_json:
        emit_json(task_dict(task))
    else:
        _print_task(task)


def _move(ctx: typer.Context, task_id: str, to_state: str, note: str, actor: str | None, at: str | None,
          as_json: bool) -> None:
    with _store(ctx) as store:
        task = store.transition_task(task_id, to_state, actor=_actor(actor), now=_now(at), note=note)
    if as_json:
        emit_json(task_dict(task))
    else:
        out.print(f"{task.id} is {task.state}", highlight=False)


@tasks_app.command("ack")
def ack(ctx: typer.Context, task_id: Annotated[str, typer.Argument(help="Task id.")], note: NoteOpt = "",
        actor: ActorOpt = None, at: AtOpt = None, as_json: JsonOpt = False) -> None:
    """Acknowledge a task: someone is on it."""
    _move(ctx, task_id, "acknowledged", note, actor, at, as_json)


@tasks_app.command("resolve")
def resolve(ctx: typer.Context, task_id: Annotated[str, typer.Argument(help="Task id.")], note: NoteOpt = "",
            actor: ActorOpt = None, at: AtOpt = None, as_json: JsonOpt = False) -> None:
    """Resolve a task (the scheduler also resolves one when it sees the renewal)."""
    _move(ctx, task_id, "resolved", note, actor, at, as_json)


@tasks_app.command("cancel")
def cancel(ctx: typer.Context, task_id: Annotated[str, typer.Argument(help="Task id.")], note: NoteOpt = "",
           actor: ActorOpt = None, at: AtOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a task that needs no action."""
    _move(ctx, task_id, "cancelled", note, actor, at, as_json)
