"""``cmdb tokens create|list|revoke``: API tokens, managed by whoever can open the store.

``create`` prints the token once (stdout, alone on its line, so ``cmdb tokens create ... > file``
captures just it); the store keeps only its keyed hash, so a lost token is revoked and replaced.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cmdb.cli_output import emit_json, opened_store
from cmdb.store.tokens import ROLES
from cmdb.tokens import create_token, key_file_for, list_tokens, load_server_key, parse_duration, revoke_token

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens: create (shown once), list, revoke.")
err = Console(stderr=True)
out = Console()


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def _store_url(ctx: typer.Context) -> str | None:
    url = ctx.find_root().params.get("store")
    return str(url) if url else None


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name: the actor recorded in history for its writes.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    partitions: Annotated[str | None, typer.Option(
        help="Comma-separated partitions the token may read and write (default: all).")] = None,
    sources: Annotated[str | None, typer.Option(
        help="Collector tokens: comma-separated batch sources it may write (scan, snmp, import:* ...).")] = None,
    scopes: Annotated[str | None, typer.Option(
        help="Collector tokens: comma-separated scopes (CIDRs) its batches may cover (default: any).")] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime such as 90d, 12h or 2w (default: no expiry).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the token and its record as JSON.")] = False,
) -> None:
    """Create a token and print it once; only its keyed hash is stored."""
    lifetime = parse_duration(expires) if expires else None
    from cmdb.store import default_store_url

    url = _store_url(ctx) or default_store_url()
    with opened_store(url, create=True) as store:
        key = load_server_key(key_file_for(store.url))
        token, rec = create_token(store, key, name, role, partitions=_split(partitions), sources=_split(sources),
                                  scopes=_split(scopes), expires=lifetime, created_by=_whoami())
    if as_json:
        emit_json({"token": token, **rec.public()})
        return
    print(token)
    err.print(f"token {rec.name!r} ({rec.role}"
              + (f", partitions {', '.join(rec.partitions)}" if rec.partitions is not None else "")
              + (f", expires {rec.expires_at}" if rec.expires_at else "")
              + "): shown once, keep it in a 0600 file", highlight=False)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Every token with its role, reach, expiry and last use (never the token or its hash)."""
    with opened_store(_store_url(ctx)) as store:
        items = list_tokens(store)
    if as_json:
        emit_json(items)
        return
    table = Table()
    for col in ("name", "role", "partitions", "sources/scopes", "created", "expires", "last used", "revoked"):
        table.add_column(col, overflow="fold")
    for t in items:
        reach = ", ".join(t["sources"] or []) + (f" in {', '.join(t['scopes'])}" if t["scopes"] else "")
        table.add_row(str(t["name"]), str(t["role"]),
                      "all" if t["partitions"] is None else ", ".join(t["partitions"]) or "none", reach,
                      str(t["created_at"]), str(t["expires_at"] or ""), str(t["last_used"] or ""),
                      str(t["revoked_at"] or ""))
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token: it stops working within seconds; its name stays taken."""
    with opened_store(_store_url(ctx)) as store:
        revoke_token(store, name)
    err.print(f"token {name!r} revoked", highlight=False)


def _whoami() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
