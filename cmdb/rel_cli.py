"""``cmdb rel show``: one relationship with the provenance of its attributes, as ``cmdb ci show`` shows a CI's.

A relationship is named by its id (``cmdb rel list`` prints them) or by its ends and type,
``SRC TYPE DST``, each end a CI id, name or identity value. Per attribute: the current value and the
source it comes from, then every source's value, when that source last saw the relationship and
whether its value is the current one (``cmdb.rel_provenance``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_conventions import store_url
from cmdb.cli_output import emit_json, opened_store
from cmdb.errors import BadInputError
from cmdb.history import resolve_ci
from cmdb.reconcile import ReconcileConfig
from cmdb.rel_provenance import find_rel, find_rel_between, rel_provenance
from cmdb.schema_store import store_schema

out = Console()


def rel_show_command(
    ref: Annotated[list[str], typer.Argument(
        help="A relationship id, or SRC TYPE DST (each end a CI id, name or identity value).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """One relationship: its attributes with their sources, every source's value and when it last saw it."""
    if len(ref) not in (1, 3):
        raise BadInputError(f"name a relationship by its id or as SRC TYPE DST, not {len(ref)} words: "
                            f"{' '.join(ref)!r}")
    config = ReconcileConfig.load()
    with opened_store(store_url()) as store:
        if len(ref) == 1:
            rel = find_rel(store, ref[0])
        else:
            schema = store_schema(store)
            rtype = schema.rel_type(ref[1]).name
            rel = find_rel_between(store, rtype, resolve_ci(store, schema, ref[0]), resolve_ci(store, schema, ref[2]))
        names = {i: f"{c.name or i} ({c.cls})" for i, c in store.get_cis([rel.src, rel.dst]).items()}
    view = rel_provenance(rel, config)
    if as_json:
        emit_json(view.to_dict())
        return
    out.print(f"[bold]{names.get(rel.src, rel.src)}[/] -{rel.type}-> [bold]{names.get(rel.dst, rel.dst)}[/]"
              f" {rel.id} status={rel.status}", highlight=False, soft_wrap=True)
    if view.attributes:
        table = Table()
        for col in ("attribute", "value", "source", "source's value", "last seen", "current"):
            table.add_column(col, overflow="fold")
        for attr, p in view.attributes.items():
            if not p.sources:
                table.add_row(attr, _text(p.value), p.source or "(unknown)", "", "", "")
            for i, sv in enumerate(p.sources):
                first = i == 0
                table.add_row(attr if first else "", _text(p.value) if first else "",
                              (p.source or "(unknown)") if first else "", f"{sv.source}: {_text(sv.value)}",
                              sv.last_seen or "", "yes" if sv.current else "no")
        out.print(table)
    else:
        out.print("  no attributes")
    for s in view.sightings:
        out.print(f"  seen by {s.source} in {s.scope}: first {s.first_seen}, last {s.last_seen}, {s.status}",
                  highlight=False, soft_wrap=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)
