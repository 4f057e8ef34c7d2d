"""Listings on the command line: typed attribute filters, ``--cursor`` paging, tables that never cut.

- ``--attr cpu_count=8`` compares the typed value the schema declares (the integer 8, not the string
  "8", which matched nothing); a value that does not fit the type is an error that says so.
- ``next`` in a listing's JSON (and the hint under a table) is an opaque cursor for ``--cursor``:
  keyset paging for CIs (stable while the store changes), an offset for relationships.
- Tables fold long ids and times onto a second line rather than cutting them (an id cut short
  cannot be copied); ``--wide`` prints every row on one line however long.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from cmdb.errors import BadInputError
from cmdb.model import AttributeSpec, Schema


def typed_filters(schema: Schema, classes: list[str] | None, items: list[str]) -> dict[str, Any]:
    """``attr=value`` filters with each value in the type its attribute has in those classes."""
    filters: dict[str, Any] = {}
    scope = classes or list(schema.classes)
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise BadInputError(f"--attr {item!r}: expected attr=value")
        spec = next((schema.classes[c].attributes[name] for c in scope
                     if c in schema.classes and name in schema.classes[c].attributes), None)
        if spec is None:
            where = f"classes {', '.join(scope[:5])}{' ...' if len(scope) > 5 else ''}" if classes else "any class"
            raise BadInputError(f"--attr {item!r}: {name!r} is not an attribute of {where}; `cmdb schema show` "
                                "lists them")
        scalar = AttributeSpec(name, spec.item_type or spec.type, enum=spec.enum)
        try:
            filters[name] = scalar.validate(raw)
        except ValueError as exc:
            raise BadInputError(f"--attr {item!r}: {exc}") from None
    return filters


def encode_cursor(kind: str, value: Any) -> str:
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> Any:
    """The position a cursor of ``kind`` holds; a cursor from another listing or mistyped is an error."""
    try:
        got, value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise BadInputError(f"--cursor {cursor!r} is not a cursor this command gave out (copy `next`)") from None
    if got != kind:
        raise BadInputError(f"--cursor {cursor!r} belongs to another listing")
    return value


def folded_table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells wrap (fold) instead of being cut with an ellipsis."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def print_table(console: Console, table: Table, wide: bool) -> None:
    """Print ``table``; ``wide`` lets every row run as long as it needs."""
    if wide:  # a console of its own: print(width=) cannot go past the terminal's width
        Console(file=console.file, width=100_000, no_color=console.no_color, highlight=False).print(table)
    else:
        console.print(table)


def more_hint(shown: int, total: int | None, next_cursor: str | None) -> str:
    """The line under a truncated listing: how many of how many, and how to see the rest."""
    if next_cursor is None:
        return f"{shown} of {total}" if total is not None else f"{shown} shown"
    of = f" of {total}" if total is not None else " (more exist)"
    return f"{shown}{of}; the next page: --cursor {next_cursor} (or a larger --limit)"
