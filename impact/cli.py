"""``cmdb impact ...``: incidents, changes, single points of failure and records, as tables or ``--json``.

Registered on the main ``cmdb`` app by ``product/cli.py``. The store URL comes from the root
``--store`` option (read from the click context, so this module never imports the CLI root).
"""

from __future__ import annotations

import sys
import uuid
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import BadInputError
from cmdb.history import parse_time, resolve_ci
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore, iso
from impact.change import analyse_change, change_dict, change_html, change_markdown
from impact.engine import blast_radius
from impact.expiry import expiring
from impact.incident import analyse_incident, report_dict
from impact.index import MemoryIndex
from impact.notify import NotificationDraft, drafts
from impact.priority import PriorityMatrix
from impact.records import record_change, record_freeze, record_incident
from impact.source import StoreSource
from impact.spof import single_points_of_failure
from impact.stakeholders import Stakeholder
from impact.states import State

impact_app = typer.Typer(no_args_is_help=True, help="Impact analysis: what breaks, how badly, and whom to tell.")
out = Console()
STATE_STYLE = {"down": "bold red", "degraded": "yellow", "at_risk": "cyan"}
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _store(ctx: typer.Context) -> AbstractContextManager[GraphStore]:
    return opened_store(ctx.find_root().params.get("store"))


def _styled(state: str) -> str:
    style = STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/]" if style else state


@impact_app.command()
def incident(
    ctx: typer.Context,
    cis: Annotated[list[str], typer.Argument(help="Failed CIs: ids, names or identity values.")],
    mode: Annotated[str, typer.Option(help="Failure mode of the CIs: down or degraded.")] = "down",
    urgency: Annotated[str, typer.Option(help="high, medium or low.")] = "medium",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate on the graph as it was then.")] = None,
    days: Annotated[int, typer.Option(help="Recent changes from this many days back.")] = 7,
    matrix: Annotated[Path | None, typer.Option(help="Priority matrix file (YAML/JSON).")] = None,
    record: Annotated[str | None, typer.Option(help="Store the incident under this key (e.g. INC0012345).")] = None,
    notify: Annotated[bool, typer.Option("--notify", help="Also draft one message per stakeholder group.")] = False,
    workaround: Annotated[str | None, typer.Option(help="Known workaround, for the drafts.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which services the failure of CIs hurts, how badly, why, whom to tell, and the priority."""
    if mode not in ("down", "degraded"):
        raise BadInputError(f"--mode {mode!r}: use down or degraded")
    pm = PriorityMatrix.load(matrix)
    at = parse_time(as_of) if as_of else None
    with _store(ctx) as store:
        rep = analyse_incident(store, cis, State.parse(mode), urgency, pm, at, days)
        data = report_dict(rep)
        started = at or iso(datetime.now(UTC))
        notes = drafts(store, rep.radius, rep.services, rep.stakeholders,
                       f"Incident: {', '.join(c['name'] for c in data['causes'])} {data['mode']}", started,
                       workaround) if notify else []
        data["notifications"] = [asdict(n) for n in notes]
        if record:
            touched = [*rep.causes, *(s.id for s in rep.services)]
            data["recorded"] = record_incident(store, record, touched, started,
                                               priority=rep.priority.priority)
        if notify:
            data["queued"] = _queue_start(store, "incident", record, notes, rep.stakeholders,
                                          {"priority": rep.priority.priority, "urgency": urgency,
                                           "impact": rep.priority.impact})
    if as_json:
        emit_json(data)
        return
    p = data["priority"]
    causes = ", ".join(c["name"] for c in data["causes"])
    out.print(f"[bold]{p['priority']}[/] (impact {p['impact']}, urgency {p['urgency']}: {p['reason']})")
    out.print(f"{causes} {data['mode']}" + (f" as of {at}" if at else "") + f": {len(data['affected'])} CIs affected, "
              f"{len(data['services'])} services")
    table = Table(title="Affected services")
    for col in ("tier", "service", "state", "why"):
        table.add_column(col, overflow="fold")
    for s in data["services"]:
        table.add_row(str(s["tier"]), s["name"], _styled(s["state"]), " -> ".join(s["path"]))
    out.print(table)
    people = Table(title="Stakeholders")
    for col in ("tier", "who", "roles", "because of", "contact"):
        people.add_column(col, overflow="fold")
    for sh in data["stakeholders"]:
        reasons = sorted({r["ci"] for r in sh["reasons"]})
        more = f" (+{len(reasons) - 3})" if len(reasons) > 3 else ""
        people.add_row(str(sh["worst_tier"] or "-"), sh["name"], ", ".join(sh["roles"]), ", ".join(reasons[:3]) + more,
                       " ".join(sh["contact"].values()))
    out.print(people)
    for r in data["related_incidents"]:
        out.print(f"[bold]related open incident[/] {r['key']} (opened {r['start']})")
    for m in data["in_maintenance"]:
        out.print(f"[cyan]in maintenance[/]: {m['name']} under approved change {m['change']}")
    for n in notes:
        out.rule(f"draft for {n.role.replace('_', ' ')}s: {', '.join(n.to)}")
        out.print(f"Subject: {n.subject}\n\n{n.body}", highlight=False, markup=False)
    if notify:
        _print_queued(data["queued"])
    if data["recent_changes"]:
        out.print(f"{len(data['recent_changes'])} recent changes near the affected CIs in the last {days} days"
                  " (see --json or `cmdb history`)")


@impact_app.command()
def spof(
    ctx: typer.Context,
    tier: Annotated[int, typer.Option(help="Services of this tier or more critical (1 = most critical).")] = 1,
    include_groups: Annotated[bool, typer.Option(help="Also list redundancy groups themselves.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Single points of failure: CIs whose failure alone takes a service of that tier down."""
    with _store(ctx) as store:
        found = single_points_of_failure(MemoryIndex.from_store(store), tier, include_groups)
    if as_json:
        emit_json([{"id": s.id, "name": s.name, "class": s.cls,
                     "services": [{"name": n, "tier": t, "path": list(p)} for n, t, p in s.services]}
                    for s in found])
        return
    table = Table(title=f"Single points of failure for tier <= {tier} services")
    for col in ("CI", "class", "takes down", "why (first service)"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(s.name, s.cls, ", ".join(f"{n} (tier {t})" for n, t, _p in s.services),
                      " -> ".join(s.services[0][2]))
    out.print(table)
    out.print(f"{len(found)} single points of failure")


@impact_app.command()
def change(
    ctx: typer.Context,
    ci: Annotated[list[str], typer.Option("--ci", help="A CI the change touches; repeatable.")],
    start: Annotated[str, typer.Option(help="Planned start (ISO time, UTC if no zone).")],
    end: Annotated[str, typer.Option(help="Planned end.")],
    type: Annotated[str, typer.Option("--type", help="standard, normal or emergency.")] = "normal",
    markdown: Annotated[bool, typer.Option("--markdown", help="A Markdown report for the change record.")] = False,
    html: Annotated[bool, typer.Option("--html", help="An HTML report.")] = False,
    record: Annotated[str | None, typer.Option(help="Store the change under this key (e.g. CHG0042).")] = None,
    state: Annotated[str, typer.Option(help="State of the stored change.")] = "requested",
    notify: Annotated[bool, typer.Option("--notify", help="Queue one message per stakeholder group.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Blast radius, risk, conflicts and approvers of a planned change."""
    with _store(ctx) as store:
        rep = analyse_change(store, ci, parse_time(start), parse_time(end), type, key=record)
        data = change_dict(rep)
        if record:
            data["recorded"] = record_change(store, record, rep.cis, rep.start, rep.end, type, state)
        if notify:
            names = ", ".join(rep.radius.source.describe(rep.cis)[c].name for c in rep.cis)
            notes = drafts(store, rep.radius, rep.services, rep.stakeholders,
                           f"Planned {type} change{' ' + record if record else ''} on {names}", rep.start)
            data["queued"] = _queue_start(store, "change", record, notes, rep.stakeholders,
                                          {"impact": {"high": "high", "medium": "medium"}.get(rep.risk, "low")})
    if as_json:
        emit_json(data)
        return
    if markdown or html:
        sys.stdout.write(change_html(rep) if html else change_markdown(rep))
        return
    if notify:
        _print_queued(data["queued"])
    out.print(f"Risk [bold]{data['risk']}[/] (score {data['score']}); {data['affected_count']} CIs at risk")
    for r in data["reasons"]:
        out.print(f"  - {r}")
    for c in data["conflicts"]:
        out.print(f"  [red]conflict[/]: {c}")
    table = Table(title="Services at risk (worst case)")
    for col in ("tier", "service", "worst case", "why"):
        table.add_column(col, overflow="fold")
    for s in data["services"]:
        table.add_row(str(s["tier"]), s["name"], _styled(s["worst_case"]), " -> ".join(s["path"]))
    out.print(table)
    out.print("Approvers: " + "; ".join(f"{a['name']} ({', '.join(a['for'])})" for a in data["approvers"]))


def _queue_start(store: GraphStore, event: str, key: str | None, notes: list[NotificationDraft],
                 stakeholders: list[Stakeholder], context: dict[str, Any]) -> dict[str, Any]:
    """Queue the start notifications in the outbox (``impact.incident_notify``); the thread is ``key`` or new."""
    from impact.automation_config import load_config
    from impact.incident_notify import queue_start

    thread = key or f"{event}-{uuid.uuid4().hex[:8]}"
    queued = queue_start(store, load_config(), event, thread, notes, stakeholders, datetime.now(UTC), context)
    return {"thread": thread, "messages": [{"id": m.id, "channel": m.channel, "to": m.recipient} for m in queued]}


def _print_queued(queued: dict[str, Any]) -> None:
    if not queued["messages"]:
        out.print("no message queued: no channel carries these notifications (add a channels: section to the "
                  "CMDB_CONFIG file), or no stakeholder has an e-mail address", highlight=False)
        return
    out.print(f"queued {len(queued['messages'])} messages under {queued['thread']} "
              f"(follow up with `cmdb incidents update {queued['thread']} --note ...`)", highlight=False)


record_app = typer.Typer(no_args_is_help=True, help="Store minimal incident, change and freeze records.")
impact_app.add_typer(record_app, name="record")


@record_app.command("incident")
def record_incident_cmd(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="External reference, e.g. INC0012345 or OPS-123.")],
    ci: Annotated[list[str], typer.Option("--ci", help="A CI the incident touches; repeatable.")],
    opened: Annotated[str | None, typer.Option(help="When it was opened (default now).")] = None,
    state: Annotated[str, typer.Option(help="open, resolved or closed.")] = "open",
    summary: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Store or update an incident record."""
    with _store(ctx) as store:
        ids = [resolve_ci(store, store_schema(store), r) for r in ci]
        rid = record_incident(store, key, ids, parse_time(opened) if opened else iso(datetime.now(UTC)), state,
                              summary)
    out.print(f"incident {key} stored as {rid}")


@record_app.command("change")
def record_change_cmd(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="External reference, e.g. CHG0042.")],
    ci: Annotated[list[str], typer.Option("--ci", help="A CI the change touches; repeatable.")],
    start: Annotated[str, typer.Option()],
    end: Annotated[str, typer.Option()],
    type: Annotated[str, typer.Option("--type")] = "normal",
    state: Annotated[str, typer.Option(help="requested, approved, in_progress, completed, failed, cancelled.")]
    = "requested",
    summary: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Store or update a change record."""
    with _store(ctx) as store:
        ids = [resolve_ci(store, store_schema(store), r) for r in ci]
        rid = record_change(store, key, ids, parse_time(start), parse_time(end), type, state, summary)
    out.print(f"change {key} stored as {rid}")


@record_app.command("freeze")
def record_freeze_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. 'Black Friday'.")],
    start: Annotated[str, typer.Option()],
    end: Annotated[str, typer.Option()],
) -> None:
    """Store a freeze (blackout) period: changes in it conflict."""
    with _store(ctx) as store:
        rid = record_freeze(store, name, parse_time(start), parse_time(end))
    out.print(f"freeze period {name} stored as {rid}")


@impact_app.command()
def expiry(
    ctx: typer.Context,
    at: Annotated[str | None, typer.Option(help="Reference time (default now).")] = None,
    within_days: Annotated[int, typer.Option("--within-days", help="Also what lapses this many days later.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """What breaks when certificates and licences lapse: expiry treated as failure."""
    when = parse_time(at) if at else iso(datetime.now(UTC))
    with _store(ctx) as store:
        lapsing = expiring(store, when, timedelta(days=within_days))
        radius = blast_radius(StoreSource(store), {c: State.DOWN for c in lapsing})
        services = radius.services()
        names = radius.source.describe(lapsing)
    items: list[dict[str, str]] = [
        {"id": c, "name": names[c].name if c in names else c, "class": names[c].cls if c in names else "",
         "expires": t} for c, t in sorted(lapsing.items(), key=lambda kv: kv[1])]
    if as_json:
        emit_json({"at": when, "within_days": within_days, "expiring": items,
                    "services": [{"name": s.name, "tier": s.tier, "state": s.state.label, "path": list(s.path)}
                                 for s in services]})
        return
    for i in items:
        out.print(f"{i['expires'][:10]}  {i['class']} {i['name']}")
    table = Table(title=f"Services hit by what lapses by {when[:10]} + {within_days} days")
    for col in ("tier", "service", "state", "why"):
        table.add_column(col, overflow="fold")
    for s in services:
        table.add_row(str(s.tier), s.name, _styled(s.state.label), " -> ".join(s.path))
    out.print(table)
