"""``cmdb prune [--dry-run] [--json]``: forget operational records older than the ``retention:`` section
says (``cmdb.retention``). Registered where the product is assembled (``product/cli.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.retention import load_retention, prune

out = Console()


def prune_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="A configuration file (default: CMDB_CONFIG, ~/.config/cmdb/config.yaml,"
                         " /etc/cmdb/config.yaml).")] = None,
) -> None:
    """Delete old API jobs, idempotency keys, delivered or dead notifications, health snapshots and
    discovery run records, each kind after its age in the retention section. CIs, history, the run
    ledger, tasks and conflicts are never pruned."""
    settings = load_retention(config)
    url = ctx.find_root().params.get("store")
    with opened_store(str(url) if url else None) as store:
        report = prune(store, settings, dry_run=dry_run)
    if as_json:
        emit_json(report.as_dict())
        return
    table = Table(title="would prune (dry run: nothing deleted)" if dry_run else "pruned")
    for column in ("kind", "kept for", "older than", "would remove" if dry_run else "removed"):
        table.add_column(column, justify="right" if column.endswith("remove") or column == "removed" else "left")
    for k in report.kinds:
        table.add_row(k["kind"], k["keep"] or "for good", k["before"] or "-", str(k["removed"]))
    out.print(table)
    out.print(f"{'would remove' if dry_run else 'removed'} {report.removed} record(s)", highlight=False)
