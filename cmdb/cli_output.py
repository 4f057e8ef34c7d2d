"""What every ``cmdb`` sub-command shares: opening the chosen store and writing JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cmdb.store import default_store_url, open_store
from cmdb.store.base import GraphStore


@contextmanager
def opened_store(url: str | None) -> Iterator[GraphStore]:
    """The store named by ``--store`` / ``CMDB_STORE`` (or the default), closed afterwards."""
    store = open_store(url or default_store_url())
    try:
        yield store
    finally:
        store.close()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
