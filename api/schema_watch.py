"""A running server follows the store's schema: ``cmdb schema add`` while it serves needs no restart.

The app loads the schema (core plus the store's extensions, ``cmdb.schema_store``) at start. A thread
reads the store's extensions at most once per ``poll_seconds`` (one small read: a handful of YAML
texts; the extensions themselves are the version, so an add, a replace, a remove, a restore or a clear
are all seen, by this process or any other, with no counter to keep in step) and, when they differ from
the ones loaded, swaps in the new schema (built once per distinct set of texts) for the routes and
hands it to the warm impact index, which rebuilds with it. A request in flight finishes with the schema
it started with. A store that is away or an extension that does not build leaves the schema as it was
(logged), and the next poll tries again.
"""

from __future__ import annotations

import logging
import threading

from api.state import ApiState
from cmdb.errors import CmdbError
from cmdb.model import Schema
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore

log = logging.getLogger("cmdb.api.schema")
Texts = tuple[tuple[str, str], ...]


def extension_texts(store: GraphStore) -> Texts:
    """What the store's schema is made of beyond the core: (name, text) in merge order."""
    return tuple((e.name, e.text) for e in store.schema_extensions())


class SchemaWatch:
    """Keeps the app's schema (``ApiState.schema``) and its warm index on the store's current schema."""

    def __init__(self, state: ApiState, seen: Texts, poll_seconds: float = 1.0) -> None:
        """``seen``: the extensions read before ``state.schema`` was built from the store (so a change in
        between is a change to this watch too)."""
        self.state = state
        self.store = state.store
        self.poll_seconds = poll_seconds
        self._seen = seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Read the store's extensions; True when they changed and the new schema is in use."""
        texts = extension_texts(self.store)
        if texts == self._seen:
            return False
        schema: Schema = store_schema(self.store)
        self._seen = texts
        self.state.impact.use_schema(schema)  # first: a write the routes accept under it reaches an index built on it
        self.state.schema = schema
        log.info("schema changed in the store (extensions: %s); now serving it",
                 ", ".join(name for name, _ in texts) or "none")
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cmdb-schema-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except CmdbError as exc:  # the store is away, or the extensions do not build: keep serving as is
                log.warning("schema check failed: %s", exc)
