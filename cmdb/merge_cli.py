"""``cmdb ci merge KEEP DUPLICATE`` and ``cmdb conflicts resolve ID``: the commands of ``cmdb.merge``.

Registered on the core's ``ci`` and ``conflicts`` groups where the product is assembled
(``product/cli.py``). The actor recorded in history is the login name.
"""

from __future__ import annotations

import getpass
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import BadInputError
from cmdb.history import resolve_ci
from cmdb.merge import MergeReport, merge_cis, resolve_conflict
from cmdb.model import default_schema

out = Console()


def _store_url(ctx: typer.Context) -> str | None:
    url = ctx.find_root().params.get("store")
    return str(url) if url else None


def _print_report(r: MergeReport) -> None:
    verb = "would merge" if r.dry_run else "merged"
    out.print(f"{verb} {r.merged} into {r.kept}: {r.cls} {r.name or ''}, {r.rels_moved} relationship(s) moved,"
              f" {r.events} history event(s)" + (" (dry run: nothing written)" if r.dry_run else ""), highlight=False)
    for c in r.changes:
        if c["kind"] == "ci.attr":
            out.print(f"  {c['attr']}: {c['old']!r} -> {c['new']!r}", highlight=False)
        elif c["kind"] == "ci.class":
            out.print(f"  class: {c['old']} -> {c['new']}", highlight=False)


def ci_merge(
    ctx: typer.Context,
    keep: Annotated[str, typer.Argument(help="The CI to keep: id, name or identity value.")],
    duplicate: Annotated[str, typer.Argument(help="The CI merged into it; its id, name and keys then name KEEP.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what the merge would do; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Merge two CIs that are one thing: relationships move to KEEP, provenance and keys combine, both
    histories stay, and the merge is a history event (`cmdb history KEEP`)."""
    schema = default_schema()
    with opened_store(_store_url(ctx)) as store:
        keep_id, dup_id = resolve_ci(store, schema, keep), resolve_ci(store, schema, duplicate)
        report = merge_cis(store, keep_id, dup_id, actor=getpass.getuser(), dry_run=dry_run, schema=schema)
    if as_json:
        emit_json(asdict(report))
    else:
        _print_report(report)


def conflicts_resolve(
    ctx: typer.Context,
    conflict_id: Annotated[str, typer.Argument(metavar="ID", help="The conflict's id (`cmdb conflicts`).")],
    merge: Annotated[bool, typer.Option("--merge", help="The CIs are one: merge them.")] = False,
    keep_separate: Annotated[bool, typer.Option(
        "--keep-separate", help="The CIs are different: never merge them or raise this again.")] = False,
    keep: Annotated[str | None, typer.Option(help="With --merge: the CI to keep (default: the conflict's first).")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Resolve an identity conflict by merging its CIs or keeping them separate."""
    if merge == keep_separate:
        raise BadInputError("give exactly one of --merge and --keep-separate")
    schema = default_schema()
    with opened_store(_store_url(ctx)) as store:
        keep_id = resolve_ci(store, schema, keep) if keep is not None else None
        resolution, report = resolve_conflict(store, conflict_id, "merge" if merge else "keep_separate",
                                              keep=keep_id, actor=getpass.getuser(), dry_run=dry_run, schema=schema)
    if as_json:
        emit_json({**asdict(resolution), "dry_run": dry_run, "merge": asdict(report) if report else None})
        return
    if report is not None:
        _print_report(report)
    if not dry_run:
        out.print(f"conflict {conflict_id} resolved: {resolution.resolution}", highlight=False)
    elif report is None:
        out.print(f"would resolve conflict {conflict_id}: {resolution.resolution} (dry run: nothing written)",
                  highlight=False)


def register(ci_app: typer.Typer, conflicts_app: typer.Typer) -> None:
    ci_app.command("merge")(ci_merge)
    conflicts_app.command("resolve")(conflicts_resolve)
