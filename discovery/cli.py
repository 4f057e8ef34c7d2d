"""``cmdb runs`` and ``cmdb discover`` / ``cmdb scan``: discovery from the command line.

Each discovery method lives in its own package (``discovery.scan``, ``discovery.snmp``,
``discovery.ssh``, ``discovery.netdev``) whose ``cli.register(app, discover_app)`` adds its
command (called by the product's root, ``product/cli.py``; this module never imports the methods,
which import ``execute`` from here); heavy protocol libraries are imported inside the commands so
``cmdb --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_conventions import PartialFailure
from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import NotFoundError
from cmdb.reconcile import ReconcileConfig
from cmdb.store.base import DiscoveryRunRecord, GraphStore
from discovery.push import BatchPusher
from discovery.runner import Collector, run_discovery

runs_app = typer.Typer(help="Discovery runs and the ingest run ledger.", invoke_without_command=True)
discover_app = typer.Typer(no_args_is_help=True, help="Discover devices, hosts and clouds: snmp, ssh, devices, aws.")
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
RecordOpt = Annotated[Path | None, typer.Option(
    "--record", help="Write every target's raw reading to DIR/<method>/<target>.json (for golden tests).")]


def store_of(ctx: typer.Context, create: bool = False) -> AbstractContextManager[GraphStore]:
    """The command line's store; a discovery run creates it (and says where), a read needs it to exist."""
    return opened_store(ctx.find_root().params.get("store"), create=create)


def execute(
    ctx: typer.Context,
    collector: Collector,
    targets: Sequence[str],
    *,
    concurrency: int,
    target_timeout: float | None,
    options: dict[str, Any],
    as_json: bool,
    record_dir: Path | None = None,
) -> DiscoveryRunRecord:
    """Runs ``collector`` over ``targets`` into the CLI's store (or ``--push``es the batches) and prints
    the outcomes."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    push_url = ctx.params.get("push")
    pusher = BatchPusher.from_options(push_url, ctx.params.get("token_file")) if push_url else None
    try:
        with store_of(ctx, create=True) as store:
            record = asyncio.run(run_discovery(
                collector, targets, store, concurrency=concurrency, target_timeout=target_timeout, options=options,
                show_progress=not as_json and sys.stderr.isatty(), config=ReconcileConfig.load(), record_dir=record_dir,
                sink=pusher.push if pusher is not None else None,
            ))
    finally:
        if pusher is not None:
            pusher.close()
    print_run(record, as_json)
    failed = failed_outcomes(record)
    if failed:  # the run is recorded and printed; exit status 1 tells cron and CI that targets failed
        raise PartialFailure(f"{sum(failed.values())} of {len(record.outcomes)} targets failed ("
                             + ", ".join(f"{n} {k}" for k, n in sorted(failed.items()))
                             + f"); `cmdb runs show {record.run_id}` has the details")
    return record


NOTHING_THERE = {"scan": frozenset({"timeout", "unreachable", "refused"})}
"""Outcomes that are an answer, not a failure, for a method: a sweep of a subnet meets silent addresses."""


def failed_outcomes(record: DiscoveryRunRecord) -> dict[str, int]:
    """Outcome -> count of the targets that failed (exit status 1 when any did)."""
    fine = {"ok", *NOTHING_THERE.get(record.method, ())}
    return {k: n for k, n in record.counts().items() if k not in fine}


def print_run(record: DiscoveryRunRecord, as_json: bool) -> None:
    if as_json:
        emit_json(asdict(record))
        return
    counts = ", ".join(f"{n} {k}" for k, n in sorted(record.counts().items()))
    n = len(record.outcomes)
    items = sum(o.get("items", 0) for o in record.outcomes)
    changes = sum(o.get("changes", 0) for o in record.outcomes)
    out.print(f"run {record.run_id} ({record.method}, by {record.actor}): {n} target{'s' if n != 1 else ''}: "
              f"{counts}; {items} CIs and relationships seen, {changes} changes", highlight=False)
    shown = [o for o in record.outcomes if o["outcome"] != "ok" or o["items"]]
    if not shown:
        return
    table = Table()
    for col in ("target", "outcome", "profile", "items", "changes", "seconds", "detail"):
        table.add_column(col, overflow="fold")
    for o in shown:
        table.add_row(o["target"], o["outcome"], o.get("profile") or "", str(o["items"]), str(o.get("changes", "")),
                      f"{o['seconds']:.2f}", o.get("detail") or "")
    out.print(table)


@runs_app.callback()
def _runs(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source's batches.")] = None,
    limit: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """Without a sub-command: the ingest ledger (which source ran over which scope, complete or partial)."""
    if ctx.invoked_subcommand is not None:
        return
    with store_of(ctx) as store:
        items = store.runs(source, limit)
    if as_json:
        emit_json([asdict(r) for r in items])
        return
    table = Table()
    for col in ("run", "source", "scope", "complete", "ended", "changes"):
        table.add_column(col, overflow="fold")
    for r in items:
        table.add_row(r.run_id, r.source, r.scope or "", "yes" if r.complete else "partial", r.ended_at,
                      ", ".join(f"{k} {v}" for k, v in r.stats.items() if v))
    out.print(table)


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    method: Annotated[str | None, typer.Option(help="scan, snmp, ssh or netdev.")] = None,
    limit: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """Discovery runs, newest first, with their outcome counts."""
    with store_of(ctx) as store:
        items = store.discovery_runs(method, limit)
    if as_json:
        emit_json([asdict(r) for r in items])
        return
    table = Table()
    for col in ("run", "method", "by", "started", "ended", "targets", "outcomes"):
        table.add_column(col, overflow="fold")
    for r in items:
        table.add_row(r.run_id, r.method, r.actor or "", r.started_at, r.ended_at or "running",
                      str(len(r.targets)) if len(r.targets) != 1 else r.targets[0],
                      ", ".join(f"{n} {k}" for k, n in sorted(r.counts().items())))
    out.print(table)


@runs_app.command("show")
def runs_show(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
    """One discovery run (its id, or ``latest``): its targets' outcomes, the profile that worked, what each wrote."""
    with store_of(ctx) as store:
        if run_id == "latest":
            newest = store.discovery_runs(None, 1)
            run_id = newest[0].run_id if newest else run_id
        record = store.get_discovery_run(run_id)
    if record is None:
        raise NotFoundError(f"no discovery run {run_id!r}; `cmdb runs list` shows them")
    if not as_json:
        out.print(f"targets: {', '.join(record.targets)}; options: {record.options}", highlight=False)
    print_run(record, as_json)
