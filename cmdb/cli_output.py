"""What every ``cmdb`` sub-command shares: opening the chosen store and writing JSON for scripts.

The JSON every command prints has one envelope, so scripts can rely on it:

- every document is an object with ``schema_version`` (bumped when a shape changes incompatibly);
- a listing is ``{"schema_version", "items", "total", "next"}``: ``next`` is the ``--cursor`` for the
  following page, or null on the last one;
- a CI's class is always under ``class`` (the Python side calls it ``cls``, a keyword clash);
- an error (``--json`` mode) is ``{"schema_version", "error": {"type", "message", "exit_code"}}`` on
  standard error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from cmdb.errors import StoreUnavailableError
from cmdb.store import default_store_url, open_store, sqlite_file
from cmdb.store.base import GraphStore

SCHEMA_VERSION = 1
notices = Console(stderr=True)


@contextmanager
def opened_store(url: str | None, *, create: bool = False, announce: bool = True) -> Iterator[GraphStore]:
    """The store named by ``--store`` / ``CMDB_STORE`` (or the default), closed afterwards.

    A store file that does not exist is an error naming the path (a mistyped ``--store`` must not
    answer with an empty list); commands that write pass ``create`` and say where they created it."""
    url = url or default_store_url()
    path = sqlite_file(url)
    created = False
    if path is not None and not path.exists():
        if not create:
            raise StoreUnavailableError(
                f"no store at {path}" + (f" (from {url})" if url != str(path) else "")
                + f"; check --store / CMDB_STORE, or create it with `cmdb --store {url} init` (or by loading "
                "data into it)")
        created = True
    store = open_store(url)
    if created and announce and path is not None:
        notices.print(f"created a new store at {path.resolve()}", highlight=False, soft_wrap=True)
    try:
        yield store
    finally:
        store.close()


def store_exists(url: str | None) -> bool:
    """False only for a store file that is not there (a server store is assumed to exist)."""
    path = sqlite_file(url or default_store_url())
    return path is None or Path(path).exists()


def _class_key(data: Any) -> Any:
    if isinstance(data, dict):
        return {("class" if k == "cls" else k): _class_key(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_class_key(v) for v in data]
    return data


def envelope(data: Any) -> dict[str, Any]:
    """``data`` in the stable JSON shape: a list becomes ``{items, total, next}``, every document gets
    ``schema_version``, ``cls`` keys are written ``class``."""
    if isinstance(data, list | tuple):
        data = {"items": list(data), "total": len(data), "next": None}
    elif not isinstance(data, dict):
        data = {"value": data}
    return {"schema_version": SCHEMA_VERSION, **_class_key(data)}


def emit_json(data: Any) -> None:
    """Print ``data`` to standard output in the stable envelope."""
    sys.stdout.write(json.dumps(envelope(data), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def emit_page(items: list[Any], total: int | None, next_cursor: str | None, **extra: Any) -> None:
    """A page of a longer listing: ``next`` is what ``--cursor`` takes to get the following page."""
    emit_json({"items": items, "total": total, "next": next_cursor, **extra})
