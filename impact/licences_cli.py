"""``cmdb licences``: entitled against used seats per licence; ``--check`` raises compliance tasks.

Registered on the root app by ``cmdb/cli.py`` (``app.command("licences")(licences_command)``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.history import parse_time
from cmdb.store.base import parse_iso
from impact.automation_config import load_config
from impact.licences import check_compliance, licence_usage

out = Console()
STATUS_STYLE = {"over": "bold red", "at": "yellow", "under": "green"}


def licences_command(
    ctx: typer.Context,
    product: Annotated[str | None, typer.Option("--product", help="Only licences of this product.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Raise, update or resolve licence_compliance tasks.")]
    = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --check: say what would happen.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Automation configuration (CMDB_CONFIG).")]
    = None,
    at: Annotated[str | None, typer.Option("--at", help="The time to act at (ISO-8601); default now.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Licences: product, seats entitled and used (installs and hosts LICENSED_BY it), over/under, expiry."""
    now = parse_iso(parse_time(at)) if at else datetime.now(UTC)
    with opened_store(ctx.find_root().params.get("store")) as store:
        usages = licence_usage(store, product)
        report = (check_compliance(store, now, load_config(config), dry_run=dry_run, usages=usages)
                  if check else None)
    if as_json:
        data: dict[str, Any] = {"licences": [u.to_dict() for u in usages]}
        if report is not None:
            data["compliance"] = {**report.summary(), "actions": report.actions}
        emit_json(data)
        return
    table = Table("product", "licence", "entitled", "used", "installs", "hosts", "over/under", "expires")
    for u in usages:
        style = STATUS_STYLE.get(u.status, "")
        balance = "-" if u.balance is None else f"{-u.balance} over" if u.balance < 0 else f"{u.balance} free"
        table.add_row(u.product or "-", u.name, "-" if u.entitled is None else str(u.entitled), str(u.used),
                      str(u.installs), str(u.hosts), f"[{style}]{balance}[/]" if style else balance, u.expires or "-")
    out.print(table)
    if report is not None:
        out.print(", ".join(f"{k} {v}" for k, v in report.summary().items() if k != "at"), highlight=False)
        for a in report.actions:
            out.print(f"  {a['action']}: {a['ci']}: {a.get('note', '')}", highlight=False)
