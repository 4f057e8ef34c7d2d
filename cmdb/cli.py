"""The core commands of ``cmdb``: load batches, look at CIs, relationships, history and conflicts.

This module holds only the core's commands and the root ``--store`` option; the wings' sub-apps
(discovery, impact, ...) are added where the product is assembled, ``product/cli.py``, so the core
package imports none of the wings built on it.

Every command follows ``cmdb.cli_conventions`` (global options anywhere, ``--json`` in one envelope,
errors as one line or JSON on stderr with a meaningful exit status); nothing is half written because
every load is one batch, one transaction. ``init`` and ``load`` live in ``cmdb.cli_load``; listing
helpers (typed filters, cursors, tables that never cut) in ``cmdb.cli_listing``.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cmdb.ci_lookup import all_matches
from cmdb.cli_conventions import options, run, store_url
from cmdb.cli_listing import decode_cursor, encode_cursor, folded_table, more_hint, print_table, typed_filters
from cmdb.cli_load import SAMPLE_ESTATE, init_command, load_command
from cmdb.cli_output import emit_json, emit_page, opened_store, store_exists
from cmdb.errors import BadInputError, CmdbError, StoreUnavailableError
from cmdb.history import ci_as_of, history_near, parse_since, parse_time, resolve_ci
from cmdb.rel_cli import rel_show_command
from cmdb.schema_store import store_schema
from cmdb.store import open_store
from cmdb.store.base import CIState, Conflict, Event, GraphStore, RelState, SearchQuery, sort_key
from cmdb.store.conflicts import check_state, conflict_dict

__all__ = ["SAMPLE_ESTATE", "app", "run_guarded"]

app = typer.Typer(
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="An open-source CMDB: configuration items and their dependencies in one graph.",
)
ci_app = typer.Typer(no_args_is_help=True, help="Configuration items.")
rel_app = typer.Typer(no_args_is_help=True, help="Relationships.")
conflicts_app = typer.Typer(invoke_without_command=True, help="Identity conflicts; `resolve` settles one.")
app.add_typer(ci_app, name="ci")
app.add_typer(rel_app, name="rel")
app.add_typer(conflicts_app, name="conflicts")

out = Console()
err = Console(stderr=True)

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


@app.callback()
def _main(
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="CMDB_STORE", help="Store URL: sqlite:///file.db or neo4j://user@host:7687."),
    ] = None,
) -> None:
    if store:
        options.store = store


def _store(create: bool = False) -> AbstractContextManager[GraphStore]:
    return opened_store(store_url(), create=create)


def _ci_dict(c: CIState, full: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"id": c.id, "class": c.cls, "name": c.name, "status": c.status, "attrs": c.attrs,
                         "created_at": c.created_at, "updated_at": c.updated_at}
    if full:
        d["provenance"] = {a: {s: asdict(v) for s, v in srcs.items()} for a, srcs in c.provenance.items()}
        d["sightings"] = [asdict(s) for s in c.sightings.values()]
    return d


def _rel_dict(r: RelState) -> dict[str, Any]:
    return {"id": r.id, "type": r.type, "from": r.src, "to": r.dst, "attrs": r.attrs, "status": r.status}


def _names(store: GraphStore, ids: set[str]) -> dict[str, str]:
    return {i: f"{c.name or i} ({c.cls})" for i, c in store.get_cis(ids).items()}


app.command("init")(init_command)
app.command("load")(load_command)
rel_app.command("show")(rel_show_command)


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Counts of CIs by class and status, relationships by type, history, conflicts."""
    with _store() as store:
        st = store.stats()
    if as_json:
        emit_json(st)
        return
    out.print(f"[bold]{st['cis']}[/] CIs, [bold]{st['relationships']}[/] relationships, "
              f"{st['events']} history events, {st['runs']} runs, {st['conflicts']} open conflicts")
    table = Table(title="CIs by class")
    table.add_column("class")
    table.add_column("count", justify="right")
    for cls, n in st["cis_by_class"].items():
        table.add_row(cls, str(n))
    out.print(table)
    rels = Table(title="Relationships by type")
    rels.add_column("type")
    rels.add_column("count", justify="right")
    for t, n in st["relationships_by_type"].items():
        rels.add_row(t, str(n))
    out.print(rels)
    out.print("CIs by status: " + ", ".join(f"{k} {v}" for k, v in st["cis_by_status"].items()))


CursorOpt = Annotated[str | None, typer.Option("--cursor", help="Continue a listing: the `next` it gave.")]
WideOpt = Annotated[bool, typer.Option("--wide", help="One line per row, however long (ids are never cut).")]


@ci_app.command("list")
def ci_list(
    cls: Annotated[str | None, typer.Option("--class", help="Class, including its subclasses.")] = None,
    status: Annotated[str | None, typer.Option(help="active, stale or retired.")] = None,
    limit: int = 50,
    offset: int = 0,
    cursor: CursorOpt = None,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List CIs, optionally of one class (and its subclasses)."""
    _search(None, cls, status, [], limit, offset, cursor, wide, as_json)


@ci_app.command("search")
def ci_search(
    text: Annotated[str | None, typer.Argument(help="Substring of the CI name.")] = None,
    cls: Annotated[str | None, typer.Option("--class")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    attr: Annotated[list[str] | None, typer.Option(
        "--attr", help="attr=value filter, compared as the attribute's type (cpu_count=8); repeatable.")] = None,
    limit: int = 50,
    offset: int = 0,
    cursor: CursorOpt = None,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Search CIs by name, class, status and attribute values."""
    _search(text, cls, status, attr or [], limit, offset, cursor, wide, as_json)


def _search(text: str | None, cls: str | None, status: str | None, attrs: list[str], limit: int, offset: int,
            cursor: str | None, wide: bool, as_json: bool) -> None:
    if status is not None and status not in ("active", "stale", "retired"):
        raise BadInputError(f"--status {status!r}: use active, stale or retired")
    if limit < 1:
        raise BadInputError(f"--limit must be at least 1, not {limit}")
    after = tuple(decode_cursor(cursor, "ci")) if cursor else None
    with _store() as store:
        schema = store_schema(store)
        classes = schema.descendants(cls) if cls else None
        filters = typed_filters(schema, classes, attrs)
        query = SearchQuery(classes=classes, status=status, text=text, attrs=filters, limit=limit,
                            offset=0 if after else offset, after=after)
        page = store.search(query)
    more = len(page.items) == limit and (after is not None or offset + limit < page.total)
    next_cursor = encode_cursor("ci", list(sort_key(page.items[-1]))) if more and page.items else None
    if as_json:
        emit_page([_ci_dict(c) for c in page.items], page.total, next_cursor, limit=limit)
        return
    table = folded_table("id", "class", "name", "status")
    for c in page.items:
        table.add_row(c.id, c.cls, c.name or "", c.status)
    print_table(out, table, wide)
    out.print(more_hint(len(page.items), page.total, next_cursor), highlight=False, soft_wrap=True)


@ci_app.command("show")
def ci_show(
    ref: Annotated[str, typer.Argument(help="CI id, name, or an identity value such as a serial or FQDN.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Show the CI as it was at this time.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One CI with its attributes, provenance and relationships (or as it was at a past time)."""
    with _store() as store:
        schema = store_schema(store)
        ci_id = resolve_ci(store, schema, ref)
        if as_of is not None:
            snap = ci_as_of(store, ci_id, parse_time(as_of))
            names = _names(store, {r["src"] for r in snap.relationships} | {r["dst"] for r in snap.relationships})
            if as_json:
                emit_json(asdict(snap))
                return
            out.print(f"[bold]{snap.id}[/] {snap.cls} as of {snap.at} ({snap.status})")
            for k, v in sorted(snap.attrs.items()):
                out.print(f"  {k}: {v}")
            for r in snap.relationships:
                out.print(f"  {names.get(r['src'], r['src'])} -{r['type']}-> {names.get(r['dst'], r['dst'])}")
            return
        ci = store.get_ci(ci_id)
        assert ci is not None
        ci_rels = store.relationships(ci_id, include_retired=True)
        rel_names = _names(store, {r.src for r in ci_rels} | {r.dst for r in ci_rels})
        others = {i: via for i, via in all_matches(store, schema, ref).items() if i != ci_id}
        other_cis = store.get_cis(set(others))
    also = [{"id": i, "class": c.cls, "name": c.name, "via": others[i]} for i, c in other_cis.items()]
    if as_json:
        emit_json({**_ci_dict(ci, full=True), "relationships": [_rel_dict(r) for r in ci_rels], "also_matches": also})
        return
    out.print(f"[bold]{ci.name}[/] ({ci.cls}) {ci.id} status={ci.status} created {ci.created_at}")
    table = Table()
    for col in ("attribute", "value", "source", "alternatives"):
        table.add_column(col, overflow="fold")
    for attr, value in sorted(ci.attrs.items()):
        cands = ci.provenance.get(attr, {})
        winner = next((s for s, v in cands.items() if v.value == value), "")
        alts = "; ".join(f"{s}={v.value}" for s, v in cands.items() if s != winner)
        table.add_row(attr, str(value), winner, alts)
    out.print(table)
    for s in ci.sightings.values():
        out.print(f"  seen by {s.source} in {s.scope}: first {s.first_seen}, last {s.last_seen}, {s.status}")
    for rel in ci_rels:
        out.print(f"  {rel_names.get(rel.src, rel.src)} -{rel.type}-> {rel_names.get(rel.dst, rel.dst)} [{rel.status}]")
    for a in also:
        out.print(f"[bold]also matches[/] {ref!r} (by {a['via']}): {a['name']} ({a['class']}) {a['id']}; "
                  f"`cmdb ci show {a['id']}`", highlight=False, soft_wrap=True)


@rel_app.command("list")
def rel_list(
    ci: Annotated[str | None, typer.Option("--ci", help="Only relationships of this CI.")] = None,
    type: Annotated[str | None, typer.Option("--type")] = None,
    direction: Annotated[str, typer.Option(help="out, in or both.")] = "both",
    limit: int = 200,
    offset: int = 0,
    cursor: CursorOpt = None,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List relationships."""
    if direction not in ("out", "in", "both"):
        raise BadInputError("--direction must be out, in or both")
    if limit < 1:
        raise BadInputError(f"--limit must be at least 1, not {limit}")
    start = int(decode_cursor(cursor, "rel")) if cursor else offset
    with _store() as store:
        schema = store_schema(store)
        if type is not None:
            schema.rel_type(type)
        ci_id = resolve_ci(store, schema, ci) if ci else None
        # One more than asked: whether there is a next page, without counting them all.
        rels = store.relationships(ci_id, type, direction, limit=limit + 1, offset=start)  # type: ignore[arg-type]
        names = _names(store, {r.src for r in rels} | {r.dst for r in rels})
    next_cursor = encode_cursor("rel", start + limit) if len(rels) > limit else None
    rels = rels[:limit]
    if as_json:
        # total: known on the last page; null while more pages remain (counting them all would read them all)
        emit_page([_rel_dict(r) for r in rels], None if next_cursor else start + len(rels), next_cursor)
        return
    table = folded_table("from", "type", "to", "status", "id")
    for r in rels:
        table.add_row(names.get(r.src, r.src), r.type, names.get(r.dst, r.dst), r.status, r.id)
    print_table(out, table, wide)
    out.print(more_hint(len(rels), None, next_cursor), highlight=False, soft_wrap=True)


@app.command()
def history(
    ref: Annotated[str, typer.Argument(help="CI id, name or identity value.")],
    since: Annotated[str | None, typer.Option(help="A span like 7d or 12h, or an ISO time.")] = None,
    depth: Annotated[int, typer.Option(help="Also changes to what it depends on, this many hops deep.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """What changed on a CI, and with --depth on what it depends on."""
    with _store() as store:
        schema = store_schema(store)
        ci_id = resolve_ci(store, schema, ref)
        events = history_near(store, schema, ci_id, parse_since(since) if since else None, depth)
        names = _names(store, {e.ci_id for e in events if e.ci_id} | {e.peer_id for e in events if e.peer_id})
    if as_json:
        emit_json([asdict(e) for e in events])
        return
    table = folded_table("at", "CI", "change", "old", "new", "source")
    for e in events:
        table.add_row(e.at, names.get(e.ci_id or "", e.ci_id or ""), _describe(e, names),
                      _short(e.old), _short(e.new), e.actor or e.source)
    out.print(table)
    out.print(f"{len(events)} changes")


def _describe(e: Event, names: dict[str, str]) -> str:
    if e.kind.startswith("rel."):
        peer = names.get(e.peer_id or "", e.peer_id or "")
        return f"{e.kind} {e.attr} -> {peer}" if e.kind == "rel.created" else f"{e.kind} {e.attr} (-> {peer})"
    return f"{e.kind} {e.attr or ''}".strip()


def _short(v: Any) -> str:
    if isinstance(v, dict) and set(v) == {"class", "attrs"}:  # a ci.created event
        v = f"{v['class']}: " + ", ".join(f"{k}={x}" for k, x in sorted(v["attrs"].items()))
    text = "" if v is None else json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 60 else text[:57] + "..."


StateOpt = Annotated[str, typer.Option(
    "--state", help="open (default), closed (by ageing), resolved (merged or kept separate), or all.")]


@conflicts_app.callback()
def conflicts(ctx: typer.Context, as_json: JsonOpt = False, state: StateOpt = "open") -> None:
    """Identity conflicts: items whose keys tie CIs whose identity values disagree, claims of a class of
    another family; open until resolved (`cmdb conflicts resolve ID --merge|--keep-separate`) or closed by
    ageing, and kept with how they ended (`--state closed|resolved|all`)."""
    if ctx.invoked_subcommand is None:
        _list_conflicts(state, as_json)


@conflicts_app.command("list")
def conflicts_list(as_json: JsonOpt = False, state: StateOpt = "open") -> None:
    """Identity conflicts in one state (open by default), oldest first, with how each ended."""
    _list_conflicts(state, as_json)


def _ended(c: Conflict) -> str:
    if c.state == "resolved":
        return f"resolved: {c.resolution} by {c.resolved_by or '?'} at {c.resolved_at}"
    if c.state == "closed":
        return f"closed at {c.closed_at} by run {c.closed_run} ({c.closed_by}): {c.closed_reason}"
    return "open"


def _list_conflicts(state: str, as_json: bool) -> None:
    check_state(state)
    with _store() as store:
        items = store.conflicts(state)
        names = _names(store, {i for c in items for i in c.ci_ids})
    if as_json:
        emit_json([conflict_dict(c) for c in items])
        return
    if not items:
        out.print("no identity conflicts" if state in ("open", "all") else f"no {state} identity conflicts")
        return
    table = folded_table("id", "at", "source", "item", "matches", "keys", "state")
    for c in items:
        table.add_row(c.id, c.at, c.source, c.item, ", ".join(names.get(i, i) for i in c.ci_ids),
                      "\n".join(f"{k} -> {names.get(v, v)}" for k, v in c.keys.items()), _ended(c))
    out.print(table)


def _report_records(verb: str, file: Path, counts: dict[str, int], as_json: bool) -> None:
    if as_json:
        emit_json({"file": str(file), "records": counts})
    else:
        out.print(f"{verb} {file}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="Where to write the dump (JSON Lines).")],
    as_json: JsonOpt = False,
) -> None:
    """Write the whole CMDB (CIs, relationships, provenance, history, runs, conflicts) to a file."""
    from cmdb.migrate import export_store

    with _store() as store:
        _report_records("exported to", file, export_store(store, file), as_json)


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A dump written by `cmdb export`.")],
    as_json: JsonOpt = False,
) -> None:
    """Load a dump into an empty store (the one named by --store)."""
    from cmdb.migrate import import_dump

    with _store(create=True) as store:
        _report_records("restored", file, import_dump(store, file), as_json)


@app.command()
def migrate(
    src: Annotated[str, typer.Option("--from", help="Store URL to copy from.")],
    dst: Annotated[str, typer.Option("--to", help="Store URL to copy into (must be empty).")],
    replace: Annotated[bool, typer.Option("--replace", help="Clear the target first.")] = False,
    verify: Annotated[bool, typer.Option(help="Compare both stores afterwards.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Move a whole CMDB, history and provenance included, between stores (SQLite <-> Neo4j)."""
    from cmdb.migrate import compare_stores
    from cmdb.migrate import migrate as run_migration

    if not store_exists(src):
        raise StoreUnavailableError(f"--from {src}: there is no store there; check the path")
    source, target = open_store(src), open_store(dst)
    try:
        counts = run_migration(source, target, replace=replace)
        diffs = compare_stores(source, target) if verify else []
    finally:
        source.close()
        target.close()
    if diffs:
        raise CmdbError(f"migration finished but the stores differ: {'; '.join(diffs[:5])}")
    if as_json:
        emit_json({"from": source.url, "to": target.url, "records": counts, "verified": verify})
    else:
        out.print(f"migrated {source.url} -> {target.url}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                  + (" (verified identical)" if verify else ""))


def run_guarded(typer_app: typer.Typer) -> None:
    """Runs ``typer_app`` under the conventions (``cmdb.cli_conventions``): global options anywhere, errors as
    one line (or JSON) on stderr with a meaningful exit status, never a traceback."""
    run(typer_app)


if __name__ == "__main__":  # the whole command (wings included) is assembled in product/cli.py
    raise SystemExit("error: `python -m cmdb.cli` holds only the core's commands; run `cmdb ...` or "
                     "`python -m product.cli ...`")
