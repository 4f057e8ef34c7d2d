"""``cmdb ci set``, ``cmdb ci retire`` and ``cmdb rel retire``: an operator's corrections (``cmdb.manual``).

Registered on the core's ``ci`` and ``rel`` sub-apps by the composition root (``register``). Each
command is one ``manual`` batch through ``ingest``; the actor in history is ``CMDB_ACTOR`` or the
login name. Exit status: 0 written, 2 bad input (an unknown attribute, a value of the wrong type),
3 no such CI or relationship.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any

import typer
from rich.console import Console

from cmdb.cli_output import emit_json, opened_store
from cmdb.history import resolve_ci
from cmdb.ingest import IngestResult
from cmdb.manual import retire_ci, retire_relationship, set_attributes
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _actor() -> str:
    return os.environ.get("CMDB_ACTOR") or getpass.getuser()


def _report(what: str, ci_id: str | None, res: IngestResult, as_json: bool, **extra: Any) -> None:
    if as_json:
        emit_json({"action": what, "id": ci_id, "run_id": res.run_id, **extra, **res.summary()})
        return
    out.print(f"{what}: {res.updated} CI(s) updated, {res.retired} retired, {res.rels_updated} relationship(s)"
              f" changed, {res.events} history event(s) (run {res.run_id}, source manual)", highlight=False)


def ci_set(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="CI id, name or identity value.")],
    assignments: Annotated[list[str], typer.Argument(help="attr=value ... (typed by the schema; lists: a,b).")],
    as_json: JsonOpt = False,
) -> None:
    """Set attributes of a CI by hand (source manual, recorded in history)."""
    with opened_store(ctx.find_root().params.get("store")) as store:
        schema = store_schema(store)
        ci_id = resolve_ci(store, schema, ref)
        res = set_attributes(store, schema, ci_id, assignments, actor=_actor(), config=ReconcileConfig.load())
        ci = store.get_ci(ci_id)
    assert ci is not None
    if as_json:
        emit_json({"action": "set", "id": ci_id, "run_id": res.run_id, "attrs": ci.attrs, **res.summary()})
        return
    _report(f"set on {ci.name or ci_id}", ci_id, res, False)


def ci_retire(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="CI id, name or identity value.")],
    as_json: JsonOpt = False,
) -> None:
    """Retire a CI and its relationships by hand (stays retired until a manual batch describes it again)."""
    with opened_store(ctx.find_root().params.get("store")) as store:
        schema = store_schema(store)
        ci_id = resolve_ci(store, schema, ref)
        res = retire_ci(store, schema, ci_id, actor=_actor())
    _report(f"retired {ci_id}", ci_id, res, as_json)


def rel_retire(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(metavar="FROM", help="CI id, name or identity value.")],
    rtype: Annotated[str, typer.Argument(metavar="TYPE", help="Relationship type, e.g. DEPENDS_ON.")],
    dst: Annotated[str, typer.Argument(metavar="TO", help="CI id, name or identity value.")],
    as_json: JsonOpt = False,
) -> None:
    """Retire one relationship by hand, e.g. a dependency entered by mistake."""
    with opened_store(ctx.find_root().params.get("store")) as store:
        schema = store_schema(store)
        a, b = resolve_ci(store, schema, src), resolve_ci(store, schema, dst)
        res = retire_relationship(store, schema, a, rtype, b, actor=_actor())
    _report(f"retired {a} -{rtype}-> {b}", None, res, as_json, **{"from": a, "type": rtype, "to": b})


def register(ci_app: typer.Typer, rel_app: typer.Typer) -> None:
    """``cmdb ci set``, ``cmdb ci retire``, ``cmdb rel retire`` (one line in the composition root)."""
    ci_app.command("set")(ci_set)
    ci_app.command("retire")(ci_retire)
    rel_app.command("retire")(rel_retire)
