"""``ingest_many``: a stream of batches, each atomic and written in order, pipelined where the store can.

On Neo4j, a long stream of large batches (``PIPELINE_MIN_BATCHES``, ``PIPELINE_MIN_ITEMS``) is
pipelined: batch N+1 is planned while batch N is written by a writer process (see
``cmdb.store.neo4j.pipeline``); the results are exactly those of a loop of ``ingest``. Other stores
and shorter streams get that loop.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain

from cmdb.batch import Batch
from cmdb.errors import CmdbError
from cmdb.ingest import IngestResult, ingest
from cmdb.model import Schema
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore

PIPELINE_MIN_ITEMS = 2000
"""A stream is pipelined only if its first batch has this many CIs and relationships: starting the
writer process costs about a second, which small batches do not win back."""
PIPELINE_MIN_BATCHES = 40
"""... and only if it has at least this many batches (looked ahead: held in memory until then). The
pipeline's fixed costs (a writer process and its connection, plans in a separate read transaction,
three processes sharing the cores) are won back only over a long stream: ``bench/neo4j_pipeline.py``
measured 0.86x the plain loop at 20k CIs (16 batches of 5,000 items) and 1.19x at 100k (80 batches)
in one run, as the issue's fresh-machine figures had it (0.68x and 1.16-1.39x)."""


def _finish(planner: Planner) -> IngestResult:
    planner.result.events = planner.event_count
    return planner.result


@contextlib.contextmanager
def _objects_frozen() -> Iterator[None]:
    """Keep the collector from re-tracing, on every full collection, the objects alive when the stream
    starts (a parsed load is millions of them): 15-20% of a large load's CPU otherwise. Left alone if
    someone else has already frozen objects, since unfreezing is global."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def ingest_many(
    store: GraphStore,
    batches: Iterable[Batch],
    *,
    schema: Schema | None = None,
    config: ReconcileConfig | None = None,
    min_items: int = PIPELINE_MIN_ITEMS,
    min_batches: int = PIPELINE_MIN_BATCHES,
    pipeline: bool | None = None,
    now: datetime | None = None,
) -> Iterator[IngestResult]:
    """Ingest ``batches`` in order, each atomic, yielding each result once its batch is written.

    A bad batch raises when its turn comes, after every batch before it has been written and
    yielded; nothing after it is written. ``now`` stamps every batch (an import of a dated export);
    by default each batch gets the time its planning starts, as ``ingest`` does.

    ``pipeline`` None lets the stream choose (``min_items``, ``min_batches``); True pipelines any
    stream of two batches or more on a store that can, False never does."""
    with _objects_frozen():
        yield from _ingest_stream(store, batches, schema or store_schema(store), config or ReconcileConfig(),
                                  min_items if pipeline is None else 0, 2 if pipeline else min_batches,
                                  pipeline is not False, now)


def _ingest_stream(store: GraphStore, batches: Iterable[Batch], schema: Schema, config: ReconcileConfig,
                   min_items: int, min_batches: int, allowed: bool, now: datetime | None) -> Iterator[IngestResult]:
    it = iter(batches)
    head: list[Batch] = []
    for batch in it:
        head.append(batch)
        if len(head) >= max(2, min_batches):
            break
    open_pipeline = getattr(store, "pipeline", None) if allowed else None
    if (open_pipeline is None or len(head) < max(2, min_batches)
            or len(head[0].cis) + len(head[0].rels) < min_items):
        for batch in chain(head, it):
            yield ingest(store, batch, schema=schema, config=config, now=now)
        return
    with open_pipeline() as pipe:
        for batch in chain(head, it):
            planner = Planner(schema, config, batch, now or datetime.now(UTC))
            try:
                planner.prepare()
            except CmdbError:
                for done in pipe.drain():
                    yield _finish(done)
                raise
            for done in pipe.push(planner.plan, planner):
                yield _finish(done)
        for done in pipe.drain():
            yield _finish(done)
