"""``cmdb health [--class C] [--json] [--trend]``: how healthy the CMDB is, and how that changed.

Each run (without ``--trend``) stores a snapshot of its scores in the store, unless ``--no-snapshot``;
``--trend`` prints the stored snapshots instead of computing a report. What is checked comes from
``cmdb/schema/health.yaml``, overridden by ``--config FILE`` or ``CMDB_HEALTH_CONFIG``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cmdb.cli_output import emit_json, opened_store
from cmdb.health.config import HealthConfig
from cmdb.health.render import render_report, render_trend
from cmdb.health.report import SCHEMA_VERSION, build_report, check_class, filter_class
from cmdb.model import default_schema


def health_command(
    ctx: typer.Context,
    cls: Annotated[str | None, typer.Option("--class", help="Only this class and its subclasses.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    trend: Annotated[bool, typer.Option("--trend", help="Show the stored snapshots' scores over time.")] = False,
    limit: Annotated[int, typer.Option(help="--trend: how many of the latest snapshots.", min=1)] = 30,
    config: Annotated[Path | None, typer.Option(
        "--config", help="A file overriding cmdb/schema/health.yaml (also CMDB_HEALTH_CONFIG).")] = None,
    no_snapshot: Annotated[bool, typer.Option("--no-snapshot", help="Do not store this run's scores.")] = False,
    show: Annotated[int, typer.Option(help="CIs named per finding in the text output.", min=0)] = 5,
    per_rule: Annotated[int, typer.Option(help="Findings spelled out per rule in the text output.", min=1)] = 10,
) -> None:
    """Completeness, correctness and staleness per class, with a score and what to do about each finding."""
    schema = default_schema()
    if cls is not None:
        check_class(schema, cls)
    url = ctx.find_root().params.get("store")
    with opened_store(str(url) if url else None) as store:
        if trend:
            snaps = store.health_snapshots(limit)
            if as_json:
                items = [{"seq": s.seq, **s.as_dict()} for s in snaps]
                if cls is not None:
                    items = [{"seq": i["seq"], "at": i["at"], "class": cls, **(i["classes"].get(cls) or {})}
                             for i in items]
                emit_json({"schema_version": SCHEMA_VERSION, "items": items, "total": len(items), "next": None})
            else:
                print(render_trend(snaps, cls))
            return
        report = build_report(store, schema, HealthConfig.load(schema, config))
        if not no_snapshot:
            store.save_health_snapshot(report.snapshot())
    if cls is not None:
        report = filter_class(report, schema, cls)
    if as_json:
        emit_json(report.as_dict())
    else:
        print(render_report(report, show, per_rule))
