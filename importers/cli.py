"""``cmdb import``: spreadsheets (with a mapping), nmap XML, ServiceNow and NetBox into the CMDB.

Typer plumbing and printing only; every importer builds batches and hands them to ``ingest``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cmdb.batch import Batch
from cmdb.cli_output import emit_json, opened_store, store_exists
from cmdb.dryrun import ItemPlan
from cmdb.errors import BadInputError
from cmdb.model import default_schema
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store import default_store_url
from importers.table_import import ImportReport, TableImport, import_batches

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Adds ``cmdb import`` to the root app."""
    app.command("import")(import_command)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def update(phase: str, rows: int) -> None:
            bar.update(task, description=phase, completed=rows)

        yield update


FORMATS = ("table", "nmap", "servicenow", "netbox")


def import_command(
    ctx: typer.Context,
    files: Annotated[list[Path] | None, typer.Argument(
        help="Files to import: CSV, JSON, JSON Lines or YAML with --mapping; nmap XML; ServiceNow or NetBox "
             "exports.")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", "-m", help="Mapping file (YAML) for a tabular file.")
                       ] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="table (with --mapping), nmap, servicenow or netbox; by default from --mapping or "
                               "the file's suffix (.xml: nmap).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Pull from this ServiceNow or NetBox instance instead.")
                   ] = None,
    user: Annotated[str | None, typer.Option("--user", help="ServiceNow user for --url.")] = None,
    secret: Annotated[str | None, typer.Option(
        "--secret", help="Where the password (ServiceNow) or token (NetBox) for --url lives: env:VARIABLE or "
                         "file:/path (a 0600 file). Never the secret itself.")] = None,
    tables: Annotated[list[str] | None, typer.Option(
        "--table", help="ServiceNow tables to pull (default: every cmdb_ci_* table of the map).")] = None,
    snow_map: Annotated[Path | None, typer.Option(
        "--snow-map", help="Your additions to the ServiceNow class/relationship table (importers/servicenow_map.yaml)."
    )] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change and why; write nothing.")
                       ] = False,
    skip_invalid: Annotated[Path | None, typer.Option(
        "--skip-invalid", help="Write the good rows; the bad ones, with their reasons, go to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Import files through the same identity, precedence and history rules as discovery."""
    paths = list(files or [])
    kind = fmt or ("table" if mapping else "nmap" if paths and all(p.suffix.lower() == ".xml" for p in paths)
                   else None)
    if kind not in FORMATS:
        raise BadInputError("say what to import: a tabular file with --mapping MAP.yaml, or --format "
                            f"{' | '.join(FORMATS[1:])}" + (f" (not {fmt!r})" if fmt else ""))
    if not paths and not url:
        raise BadInputError("name a file to import" + (" or --url" if kind in ("servicenow", "netbox") else ""))
    config = ReconcileConfig.load()
    show = not as_json and sys.stderr.isatty()
    store_url = ctx.find_root().params.get("store")
    schema = default_schema()  # a store the import is about to create has only the core schema
    if store_exists(store_url or default_store_url()):
        with opened_store(store_url) as opened:  # mappings may name classes of the store's schema extensions
            schema = store_schema(opened)
    if kind == "table":
        if mapping is None:
            raise BadInputError("a tabular file needs --mapping MAP.yaml (see importers/mapping.py for the format)")
        if len(paths) != 1:
            raise BadInputError("a mapped import takes one file at a time")
        from importers.mapping import load_mapping

        spec = load_mapping(mapping, schema)
        with opened_store(store_url, create=not dry_run) as store, _progress(show) as progress:
            job = TableImport(store, paths[0], spec, config=config, progress=progress)
            report = job.run(dry_run=dry_run, rejects=skip_invalid)
        print_report(report, dry_run, skip_invalid, as_json)
        return
    if mapping is not None or skip_invalid is not None:
        raise BadInputError(f"--mapping and --skip-invalid are for tabular files, not --format {kind}")
    labelled, source, origin = _native_batches(kind, paths, url, user, secret, tables or [], snow_map)
    report = ImportReport(origin, source)
    with opened_store(store_url, create=not dry_run) as store, _progress(show) as progress:
        import_batches(store, labelled, report, schema=schema, config=config, dry_run=dry_run, progress=progress)
    print_report(report, dry_run, None, as_json)


def _native_batches(kind: str, paths: list[Path], url: str | None, user: str | None, secret: str | None,
                    tables: list[str], snow_map: Path | None) -> tuple[list[tuple[list[str], Batch]], str, str]:
    """(labelled batches, source, what was read) for the importers that build native batches."""
    if kind == "nmap":
        if url:
            raise BadInputError("--url is for ServiceNow and NetBox; nmap imports its XML files")
        from importers.nmap import SOURCE, nmap_batches

        out_batches: list[tuple[list[str], Batch]] = []
        for _path, reading in nmap_batches(paths):
            _warn(reading.notes)
            for b in reading.batches:
                out_batches.append(([f"{b.origin} {c.cls}" for c in b.cis], b))
        return out_batches, SOURCE, ", ".join(str(p) for p in paths)
    if kind == "servicenow":
        return _servicenow(paths, url, user, secret, tables, snow_map)
    if kind == "netbox":
        return _netbox(paths, url, secret)
    raise BadInputError(f"--format {kind} is not available in this build")


def _netbox(paths: list[Path], url: str | None, secret: str | None
            ) -> tuple[list[tuple[list[str], Batch]], str, str]:
    from importers.netbox import SOURCE, pull_netbox, read_netbox_export, transform_netbox

    if url:
        if paths:
            raise BadInputError("give an export file or --url, not both")
        if not secret:
            raise BadInputError("--url needs --secret env:VAR|file:PATH (where the NetBox API token lives)")
        from importers.http_pull import secret_from_option

        data, origin = pull_netbox(url, secret_from_option(secret, "netbox").reveal()), url.rstrip("/")
    else:
        if len(paths) != 1:
            raise BadInputError("a NetBox import reads one export file (or --url)")
        data, origin = read_netbox_export(paths[0]), str(paths[0])
    reading = transform_netbox(data, origin)
    _warn(reading.notes)
    return [(reading.labels, reading.batch)], SOURCE, origin


def _warn(notes: list[str]) -> None:
    for note in notes[:50]:
        err.print(f"warning: {note}", highlight=False, soft_wrap=True)
    if len(notes) > 50:
        err.print(f"warning: ... and {len(notes) - 50} more", highlight=False)


def _servicenow(paths: list[Path], url: str | None, user: str | None, secret: str | None, tables: list[str],
                snow_map: Path | None) -> tuple[list[tuple[list[str], Batch]], str, str]:
    from importers.servicenow import SOURCE, load_snow_map, read_export, transform_servicenow

    schema = default_schema()
    snow = load_snow_map(schema, snow_map)
    if url:
        if paths:
            raise BadInputError("give export files or --url, not both")
        if not user or not secret:
            raise BadInputError("--url needs --user and --secret env:VAR|file:PATH (where the password lives)")
        from importers.http_pull import secret_from_option, servicenow_tables

        password = secret_from_option(secret, "servicenow")
        wanted = tables or sorted(snow.classes)
        records: dict[str, dict[str, Any]] = {}
        rels: list[dict[str, Any]] = []
        for table, rec in servicenow_tables(url, [*wanted, "cmdb_rel_ci"], user, password):
            if table == "cmdb_rel_ci":
                rels.append(rec)
                continue
            sys_id = str(rec.get("sys_id", {}).get("value") if isinstance(rec.get("sys_id"), dict)
                         else rec.get("sys_id"))
            own = rec.get("sys_class_name")
            own = own.get("value") if isinstance(own, dict) else own
            if sys_id not in records or own == table:
                records[sys_id] = rec
        origin = url.rstrip("/")
        reading = transform_servicenow(list(records.values()), rels, snow, schema, origin=origin)
    else:
        cis, rels = read_export(paths)
        origin = ", ".join(p.name for p in paths)
        reading = transform_servicenow(cis, rels, snow, schema, origin=origin)
    _warn(reading.notes)
    return list(zip(reading.labels, reading.batches, strict=True)), SOURCE, origin


def _value(v: Any) -> str:
    return "(none)" if v is None else str(v)


def _plan_dict(labels: list[str], item: ItemPlan) -> dict[str, Any]:
    seen = [labels[i] for i in item.items if i < len(labels)]
    return {"where": sorted(set(seen), key=seen.index), "action": item.action, "class": item.cls,
            "name": item.name, "ci_id": item.ci_id, "matched_by": item.matched_by, "conflict_ids": item.conflict_ids,
            "merged": item.merged,
            "changes": [{"attr": c.attr, "old": c.old, "new": c.new, "winner": c.winner} for c in item.changes],
            "kept": [{"attr": c.attr, "value": c.old, "offered": c.offered, "winner": c.winner} for c in item.kept]}


def dry_run_items(report: ImportReport) -> list[dict[str, Any]]:
    return [_plan_dict(lines, item) for lines, plan in report.plans for item in plan.items]


def print_report(report: ImportReport, dry_run: bool, rejects: Path | None, as_json: bool) -> None:
    if dry_run:
        items = dry_run_items(report)
        counts = {a: report.planned.get(a, 0) for a in ("create", "update", "unchanged", "conflict")}
        rels = report.planned.get("rels_created", 0)
        if as_json:
            emit_json({"file": report.file, "source": report.source, "dry_run": True, "rows": report.rows,
                       "notes": report.notes,
                       "rejected": report.rejected, "counts": counts, "rels_created": rels, "items": items,
                       "items_not_shown": report.omitted})
            return
        for i in items:
            where = ", ".join(i["where"])
            label = f"{i['class']} {i['name'] or ''}".strip()
            if i["action"] == "create":
                out.print(f"{where}: create {label}", highlight=False, soft_wrap=True)
                continue
            if i["action"] == "conflict":
                out.print(f"{where}: conflict {label}: keys point at {', '.join(i['conflict_ids'])} "
                          f"({'; '.join(i['matched_by'])}); it would not be written", highlight=False, soft_wrap=True)
                continue
            merging = f", merging {', '.join(i['merged'])} into it" if i["merged"] else ""
            out.print(f"{where}: {i['action']} {label} ({i['ci_id']}), matched by {', '.join(i['matched_by'])}"
                      f"{merging}", highlight=False, soft_wrap=True)
            for c in i["changes"]:
                out.print(f"    {c['attr']}: {_value(c['old'])} -> {_value(c['new'])} ({c['winner']} wins)",
                          highlight=False, soft_wrap=True)
            for c in i["kept"]:
                out.print(f"    {c['attr']}: stays {_value(c['value'])} ({c['winner']} wins over "
                          f"{report.source}, which says {_value(c['offered'])})", highlight=False, soft_wrap=True)
        if report.omitted:
            out.print(f"... and {report.omitted} more items (counted below, not shown)", highlight=False)
        for note in report.notes:
            out.print(f"note: {note}", highlight=False, soft_wrap=True)
        out.print(f"dry run of {report.file}: {counts['create']} to create, {counts['update']} to update, "
                  f"{counts['unchanged']} unchanged, {counts['conflict']} conflicts, {rels} relationships to "
                  f"create; {report.rejected} rows rejected; nothing was written", highlight=False, soft_wrap=True)
        return
    if as_json:
        emit_json({"file": report.file, "source": report.source, "rows": report.rows, "rejected": report.rejected,
                   "rejects_file": str(rejects) if rejects else None, **report.totals,
                   "batches": len(report.run_ids)})
        return
    t = report.totals
    rows = f"{report.rows} rows, " if report.rows else ""
    out.print(f"[bold]{report.file}[/] ({report.source}): {rows}{t.get('created', 0)} created, "
              f"{t.get('updated', 0)} updated, {t.get('unchanged', 0)} unchanged, {t.get('rels_created', 0)} "
              f"relationships created, {t.get('events', 0)} history events, {t.get('conflicts', 0)} conflicts "
              f"in {len(report.run_ids)} batches", highlight=False, soft_wrap=True)
    if report.rejected:
        err.print(f"{report.rejected} bad rows written to {rejects}:", highlight=False, soft_wrap=True)
        for p in report.problems:
            err.print(f"  {p}", highlight=False, soft_wrap=True)
