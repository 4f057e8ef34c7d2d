"""``cmdb init`` and ``cmdb load``: create a store, load batch files (or standard input) into it, or
show what a load would do.

``load`` tells the truth about what it wrote: every file is its own atomic batch, written in order,
and its result is printed as soon as it is written, so when a later file is refused the earlier
ones are on screen (and in the ``--json`` document) before the error. ``--dry-run`` runs ingest's
own planner over a read-only view of the store (``cmdb.dryrun``): what would be created, changed and left
alone, with the very counts the load would print.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.batch import Batch
from cmdb.cli_conventions import store_url
from cmdb.cli_output import emit_json, emit_page, opened_store, store_exists
from cmdb.dryrun import BatchPlan, plan_batch
from cmdb.errors import BadInputError, CmdbError
from cmdb.ingest_pipeline import ingest_many
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store import default_store_url, sqlite_file

SAMPLE_ESTATE = Path(__file__).parent / "sample" / "estate.yaml"
STDIN = "-"
out = Console()


def init_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Create the store named by --store / CMDB_STORE (or the default) and say where it is."""
    url = store_url() or default_store_url()
    existed = store_exists(url)
    with opened_store(url, create=True, announce=False) as store:
        cis = store.stats()["cis"]
    path = sqlite_file(url)
    where = str(path.resolve()) if path is not None else url
    if as_json:
        emit_json({"store": url, "path": where, "created": not existed, "cis": cis})
    elif existed:
        out.print(f"a store already exists at {where} ({cis} CIs); left as it is", highlight=False, soft_wrap=True)
    else:
        out.print(f"created a new store at {where}", highlight=False, soft_wrap=True)


def _read(name: str) -> Batch:
    if name == STDIN:
        return Batch.from_bytes(sys.stdin.buffer.read(), "<stdin>")
    return Batch.from_file(Path(name))


def load_command(
    files: Annotated[list[str] | None, typer.Argument(
        help="Batch files (JSON or YAML); - reads one batch from standard input.")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Load the bundled sample estate.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what each file would create, change and leave alone (each against the store "
                          "as it is now); write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Load batch files; each file is one atomic batch, written in order."""
    names = list(files or [])
    if sample:
        names.insert(0, str(SAMPLE_ESTATE))
    if not names:
        raise BadInputError("name one or more batch files, - for standard input, or --sample")
    if names.count(STDIN) > 1:
        raise BadInputError("standard input (-) can be read only once")
    batches = [_read(n) for n in names]  # parse everything before writing anything
    labels = ["<stdin>" if n == STDIN else n for n in names]
    config = ReconcileConfig.load()
    if dry_run:
        _dry_run(labels, batches, config, as_json)
        return
    results: list[dict[str, Any]] = []
    try:
        with opened_store(store_url(), create=True) as store:
            # Each file is its own transaction, in order; on Neo4j the next is planned while one is written.
            for label, res in zip(labels, ingest_many(store, batches, config=config), strict=False):
                results.append({"file": label, "run_id": res.run_id, **res.summary()})
                if not as_json:
                    _print_result(results[-1])
    except CmdbError as exc:
        if as_json:
            emit_page(results, len(results), None, failed=labels[len(results)])
        if results:
            raise type(exc)(f"{exc}\n({len(results)} of {len(batches)} files were written before it: "
                            f"{', '.join(r['file'] for r in results)})") from exc
        raise
    if as_json:
        emit_page(results, len(results), None)


# What ageing, lifecycle and merging did, printed when it happened (the JSON always has every count).
AFTERMATH = (("merged", "CIs merged"), ("keys_retired", "identity keys retired"),
             ("attrs_dropped", "attribute values dropped"), ("rel_attrs_dropped", "relationship attribute values "
                                                                                  "dropped"),
             ("conflicts_closed", "conflicts closed"), ("stale", "stale"), ("retired", "retired"))


def _print_result(r: dict[str, Any]) -> None:
    extra = "".join(f", {r[k]} {label}" for k, label in AFTERMATH if r.get(k))
    out.print(f"[bold]{r['file']}[/]: {r['created']} created, {r['updated']} updated, "
              f"{r['unchanged']} unchanged, {r['rels_created']} relationships created, "
              f"{r['events']} history events, {r['conflicts']} conflicts{extra} (run {r['run_id']})", soft_wrap=True)
    out.file.flush()


def _plan_summary(label: str, plan: BatchPlan) -> dict[str, Any]:
    """The counts are the planner's own (``summary``: what ``cmdb load`` would print for the file)."""
    s = plan.summary
    return {"file": label, **{k: v for k, v in s.items() if k not in ("created", "updated")},
            "would_create": s["created"], "would_update": s["updated"], "summary": s,
            "plan": [asdict(i) for i in plan.items]}


def _dry_run(labels: list[str], batches: list[Batch], config: ReconcileConfig, as_json: bool) -> None:
    url = store_url() or default_store_url()
    missing = not store_exists(url)
    # A dry run never creates a store: against one that does not exist yet, everything would be new.
    with opened_store("sqlite:///:memory:" if missing else url) as store:
        schema = store_schema(store)
        plans = [_plan_summary(label, plan_batch(store, b, schema=schema, config=config))
                 for label, b in zip(labels, batches, strict=True)]
    if as_json:
        emit_page(plans, len(plans), None, dry_run=True, store_exists=not missing)
        return
    if missing:
        out.print(f"(no store at {sqlite_file(url)} yet: everything would be created)", highlight=False)
    for p in plans:
        extra = "".join(f", {p[k]} {label}" for k, label in AFTERMATH if p.get(k))
        out.print(f"[bold]{p['file']}[/] would create {p['would_create']}, update {p['would_update']}, leave "
                  f"{p['unchanged']} unchanged, {p['conflicts']} conflicts{extra}; relationships: {p['rels_created']} "
                  f"created, {p['rels_updated']} updated (dry run: nothing written)", soft_wrap=True)
        shown = [i for i in p["plan"] if i["action"] != "unchanged"]
        if not shown:
            continue
        table = Table()
        for col in ("action", "class", "name", "id", "why", "changes"):
            table.add_column(col, overflow="fold")
        for i in shown:
            why = ", ".join(i["matched_by"]) or ("; ".join(i["conflict_ids"]) if i["conflict_ids"] else "")
            if i["merged"]:
                why += f" (merges {', '.join(i['merged'])})"
            changes = "; ".join(f"{c['attr']}: {c['old']!r} -> {c['new']!r}" for c in i["changes"])
            table.add_row(i["action"], i["cls"], i["name"] or "", i["ci_id"] or "", why, changes)
        out.print(table)
