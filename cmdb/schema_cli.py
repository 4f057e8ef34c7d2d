"""``cmdb schema``: the store's schema extensions (``cmdb.schema_store``) and the merged model.

``add FILE`` validates an extension against the core and the store's other extensions and keeps it in
the store; ``list`` shows what the store holds; ``show [CLASS|TYPE]`` explains the merged model;
``remove NAME`` drops an extension no data needs. Registered by the composition root.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import NotFoundError
from cmdb.model import AttributeSpec, CIClass, RelationshipType, Schema, parse_schema_text
from cmdb.schema_store import add_extension, remove_extension, store_schema, undefined_in_use

schema_app = typer.Typer(no_args_is_help=True, help="The schema: core classes plus the store's extensions.")
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _store_url(ctx: typer.Context) -> str | None:
    value = ctx.find_root().params.get("store")
    return str(value) if value else None


def _defines(text: str) -> dict[str, list[str]]:
    doc = parse_schema_text(text, "stored")
    return {"classes": sorted(doc.get("classes") or {}), "relationships": sorted(doc.get("relationships") or {})}


@schema_app.command("add")
def schema_add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Extension file (YAML: classes and/or relationships).")],
    name: Annotated[str | None, typer.Option("--name", help="Name in the store (default: the file's stem).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep a schema extension in the store (replaces one of the same name)."""
    actor = os.environ.get("CMDB_ACTOR") or getpass.getuser()
    with opened_store(_store_url(ctx)) as store:
        ext, replaced = add_extension(store, file, name, actor)
    defined = _defines(ext.text)
    if as_json:
        emit_json({"name": ext.name, "seq": ext.seq, "replaced": replaced, "added_at": ext.added_at, **defined})
        return
    what = ", ".join(defined["classes"] + defined["relationships"]) or "attributes only"
    out.print(f"{'replaced' if replaced else 'added'} schema extension {ext.name!r} ({what})", highlight=False)


@schema_app.command("list")
def schema_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The schema extensions this store holds, in merge order."""
    with opened_store(_store_url(ctx)) as store:
        exts = store.schema_extensions()
        undefined = undefined_in_use(store, store_schema(store))
    items: list[dict[str, Any]] = [
        {"name": e.name, "seq": e.seq, "added_at": e.added_at, "added_by": e.added_by, **_defines(e.text)}
        for e in exts]
    if as_json:
        emit_json({"items": items, "total": len(items), "next": None, "undefined_in_use": undefined})
        return
    missing = undefined["classes"] + undefined["relationships"]
    if missing:
        out.print(f"[red]warning:[/] this store holds data of {', '.join(missing)}, which its schema does not"
                  " define: add the extension that does (cmdb schema add FILE)", highlight=False)
    if not items:
        out.print("this store holds no schema extension: the core schema only (add one: cmdb schema add FILE)")
        return
    table = Table()
    for col in ("name", "added", "by", "classes", "relationships"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(i["name"], i["added_at"], i["added_by"] or "", ", ".join(i["classes"]),
                      ", ".join(i["relationships"]))
    out.print(table)


def _attr(spec: AttributeSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"type": spec.type}
    for key, value in (("required", spec.required), ("enum", list(spec.enum) if spec.enum else None),
                       ("min", spec.minimum), ("max", spec.maximum), ("default", spec.default),
                       ("description", spec.description)):
        if value is not None and value is not False and value != "":
            d[key] = value
    return d


def _class(schema: Schema, c: CIClass) -> dict[str, Any]:
    rels = [r.name for r in schema.relationships.values()
            if any(schema.is_a(c.name, x) for x in (*r.from_classes, *r.to_classes))]
    return {"class": c.name, "parent": c.parent, "abstract": c.abstract, "ancestors": list(c.ancestors),
            "identity": [list(k) for k in c.identity], "attributes": {a: _attr(s) for a, s in c.attributes.items()},
            "relationships": sorted(rels), "subclasses": [n for n in schema.descendants(c.name) if n != c.name]}


def _rel(r: RelationshipType) -> dict[str, Any]:
    return {"type": r.name, "impact": r.impact, "effect": r.effect, "group": r.group, "from": list(r.from_classes),
            "to": list(r.to_classes), "stakeholder": r.stakeholder, "description": r.description}


@schema_app.command("show")
def schema_show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A class or relationship type; none: an overview.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The merged schema of this store: one class or relationship type, or every one."""
    with opened_store(_store_url(ctx)) as store:
        schema = store_schema(store)
    if name is None:
        doc: dict[str, Any] = {
            "classes": {n: {"parent": c.parent, "abstract": c.abstract} for n, c in sorted(schema.classes.items())},
            "relationships": {n: {"impact": r.impact} for n, r in sorted(schema.relationships.items())}}
        if as_json:
            emit_json(doc)
            return
        out.print(yaml.safe_dump(doc, sort_keys=False, width=100).rstrip(), highlight=False)
        return
    if name in schema.classes:
        doc = _class(schema, schema.classes[name])
    elif name in schema.relationships:
        doc = _rel(schema.relationships[name])
    else:
        raise NotFoundError(f"{name!r} is neither a class nor a relationship type of this store's schema;"
                            " see cmdb schema show")
    if as_json:
        emit_json(doc)
        return
    out.print(yaml.safe_dump(doc, sort_keys=False, width=100).rstrip(), highlight=False)


@schema_app.command("remove")
def schema_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The extension's name (cmdb schema list).")],
    as_json: JsonOpt = False,
) -> None:
    """Drop an extension that no CI or relationship of the store uses."""
    with opened_store(_store_url(ctx)) as store:
        remove_extension(store, name)
    if as_json:
        emit_json({"name": name, "removed": True})
        return
    out.print(f"removed schema extension {name!r}", highlight=False)
