"""The warm impact index: built once, refreshed in the background when the store's write counter moves.

Building a ``MemoryIndex`` reads every impact edge (seconds on 100k CIs), so impact requests never
build it: they take the newest index. It keeps the stakeholder edges too (``MemoryIndex.load_stakeholders``),
so an incident's stakeholders are not a store read. A thread polls ``store.write_counter()`` (one cheap read) and
rebuilds when it changed; the API's own writes wake it at once (``poke``). An answer is therefore
at most one rebuild behind a write made elsewhere, and names its ``index_writes``. A new schema (an
extension added while serving, ``api.schema_watch``) is built in by the next refresh too; ``version``
numbers the builds, so answers kept for one index (``api.answer_cache``) are not served from the next.

Under a steady stream of writes (a collector posting a batch each second), rebuilding after each
one kept a worker rebuilding a 100k-CI index (about 4 s of CPU) all the time; after a build of t
seconds the thread therefore rests 4t before the next (0.2 s on the sample estate, some 15 s on
100k CIs), so rebuilds take at most a fifth of a core and answers lag writes by at most that.

A 100k-CI index is millions of Python objects; the first full collection of the cyclic garbage
collector after a build walked them all inside some request (the first fresh answer took 224 ms
instead of 70). Each build is therefore frozen (``gc.freeze``: the collector no longer looks at it;
reference counting still frees it once the next build replaces it and the index <-> arrays cycle
is cut).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

from cmdb.errors import CmdbError
from cmdb.model import Schema
from cmdb.store.base import GraphStore
from impact.index import MemoryIndex
from impact.vector import VectorIndex
from impact.vector_labels import labels_of
from impact.vector_stakeholders import arrays_of

log = logging.getLogger("cmdb.api.impact")
REST_RATIO = 4.0  # after a build of t seconds, the next waits 4t: rebuilds take at most a fifth of a core


class WarmImpactIndex:
    def __init__(self, store: GraphStore, schema: Schema, poll_seconds: float = 1.0,
                 on_refresh: Callable[[], None] | None = None) -> None:
        self.store = store
        self.schema = schema
        self.poll_seconds = poll_seconds
        self.on_refresh = on_refresh
        self._index: MemoryIndex | None = None
        self._writes: int | None = None
        self._built_with: Schema | None = None  # the schema of the current index
        self._builds = 0
        self._rest_until = 0.0  # the background thread builds again no sooner (monotonic time)
        self._build_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def writes(self) -> int | None:
        """The write counter the current index was built at."""
        return self._writes

    @property
    def version(self) -> int | None:
        """Which build the current index is (None before the first): a new write or a new schema makes a new one."""
        return self._builds if self._index is not None else None

    def current(self) -> MemoryIndex:
        """The newest index; built here only if none exists yet (the first request after start)."""
        index = self._index
        if index is None:
            self.refresh()
            index = self._index
            assert index is not None
        return index

    def refresh(self, force: bool = False) -> bool:
        """Rebuild if the store was written (or the schema replaced) since the last build; True if it rebuilt."""
        with self._build_lock:
            writes, schema = self.store.write_counter(), self.schema
            if not force and self._index is not None and writes == self._writes and schema is self._built_with:
                return False
            index = MemoryIndex.from_store(self.store, schema, stakeholders=True)
            vx = VectorIndex.of(index)  # the numpy arrays, names and stakeholder arrays too: no request pays
            labels_of(vx)
            arrays_of(vx)
            old, self._index, self._writes, self._built_with = self._index, index, writes, schema
            self._builds += 1
            if old is not None:
                old.derived.clear()  # the index <-> arrays cycle: freed by reference counting, frozen or not
            gc.collect(1)
            gc.freeze()  # the index's millions of objects leave the collector's view (see the module doc)
            if self.on_refresh is not None:  # counted before the lock opens: whoever refreshes next sees it
                self.on_refresh()
        return True

    def use_schema(self, schema: Schema) -> None:
        """Build with ``schema`` from now on (the store's schema changed); the next refresh rebuilds."""
        self.schema = schema
        self.poke()

    def poke(self) -> None:
        """Ask for a refresh now (after a write through the API)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cmdb-impact-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._builds:
            gc.unfreeze()  # the app is going away: what its builds froze goes back to the collector

    def _run(self) -> None:
        while not self._stop.is_set():
            rest = self._rest_until - time.monotonic()
            if rest > 0 and self._stop.wait(rest):
                break
            started = time.monotonic()
            try:
                if self.refresh():
                    self._rest_until = time.monotonic() + REST_RATIO * (time.monotonic() - started)
            except CmdbError as exc:  # the store is away: keep the last index, try again next poll
                log.warning("impact index refresh failed: %s", exc)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
