"""``cmdb config``: which configuration file is in effect, every value with where it came from, and a
check that reports every problem at once (``cmdb.config``). Registered by the composition root."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json
from cmdb.config import ConfigDocument, load_document, registered_sections, search_path, validate_document

config_app = typer.Typer(no_args_is_help=True, help="The configuration file: show it, check it.")
out = Console()
err = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A configuration file (default: CMDB_CONFIG,"
                                                " ~/.config/cmdb/config.yaml, /etc/cmdb/config.yaml).")]
_SENSITIVE = re.compile(r"pass|secret|token|authori[sz]ation|api[-_]?key", re.IGNORECASE)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: v for k, v in value.model_dump(mode="json", by_alias=True).items() if k != "origin"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _masked(value: Any, name: str = "") -> Any:
    """Values under sensitive-looking keys (an Authorization header) replaced: config show is for screens."""
    if isinstance(value, dict):
        return {k: _masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, name) for v in value]
    return "***" if isinstance(value, str) and _SENSITIVE.search(name) else value


def _flatten(value: Any, key: tuple[str, ...], doc: ConfigDocument, rows: list[dict[str, Any]]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, (*key, str(k)), doc, rows)
        return
    rows.append({"key": ".".join(key), "value": value, "from": doc.origin(key)})


@config_app.command("show")
def config_show(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The effective configuration: every value, and where it came from (file, environment or default)."""
    doc = load_document(config)
    values, problems = validate_document(doc)
    rows: list[dict[str, Any]] = []
    effective: dict[str, Any] = {}
    for name, value in sorted(values.items()):
        plain = _masked(_plain(value))
        if len(registered_sections()[name].names) > 1 and isinstance(plain, dict):  # sections validated together
            effective.update(plain)
        else:
            effective[name] = plain
    for name, value in sorted(effective.items()):
        _flatten(value, (name,), doc, rows)
    if as_json:
        emit_json({"file": str(doc.path) if doc.path else None, "search_path": [str(p) for p in search_path()],
                   "values": effective, "items": rows, "total": len(rows), "next": None,
                   "problems": [p.__dict__ for p in problems]})
        return
    searched = ", ".join(map(str, search_path()))
    out.print(f"configuration file: {doc.path or f'none (defaults; searched {searched})'}", highlight=False)
    table = Table()
    for col in ("key", "value", "from"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["key"], str(r["value"]), r["from"])
    out.print(table)
    for p in problems:
        err.print(f"[red]problem:[/] {p}", highlight=False, soft_wrap=True)


@config_app.command("check")
def config_check(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Validate every section; lists every problem with its path (exit 2 when there is any)."""
    doc = load_document(config)
    problems = validate_document(doc)[1]
    if as_json:
        emit_json({"file": str(doc.path) if doc.path else None, "ok": not problems,
                   "problems": [p.__dict__ for p in problems]})
    elif problems:
        for p in problems:
            err.print(f"{p}", highlight=False, soft_wrap=True)
        err.print(f"{len(problems)} problem(s) in {doc.path or 'the environment overrides'}", highlight=False)
    else:
        out.print(f"ok: {doc.path or 'no configuration file (defaults)'}", highlight=False)
    if problems:
        raise typer.Exit(code=2)
