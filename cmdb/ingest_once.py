"""``ingest_once``: ``ingest`` under an idempotency key, for retried HTTP batch POSTs.

The key is written in the batch's own transaction (``GraphStore.write_batch_once``), so a retry
of a batch that was written, even one whose response was lost to a crash, writes nothing and gets
the first run's summary back.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.ingest import IngestResult
from cmdb.model import Schema
from cmdb.planning import Planner
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.store.base import GraphStore, iso
from cmdb.store.idempotency import IdempotencyRecord


def fingerprint(doc: Any) -> str:
    """A digest of a request body, independent of key order and whitespace."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


class KeyReusedError(BadInputError):
    """An idempotency key sent again with a different request body."""


def ingest_once(
    store: GraphStore,
    batch: Batch,
    key: str,
    body_fingerprint: str,
    *,
    schema: Schema | None = None,
    config: ReconcileConfig | None = None,
    now: datetime | None = None,
) -> tuple[IngestResult | None, IdempotencyRecord]:
    """Ingest ``batch`` unless ``key`` was used before: then (None, the first record), nothing written.

    Raises ``KeyReusedError`` if the key was used for a request with another fingerprint."""
    known = store.idempotency_record(key)
    if known is None:
        now = now or datetime.now(UTC)
        planner = Planner(schema or store_schema(store), config or ReconcileConfig(), batch, now)
        planner.prepare()
        cs, known = store.write_batch_once(key, body_fingerprint, planner.plan, iso(now))
        if cs is not None:
            result = planner.result
            result.events = planner.event_count
            return result, known
    if known.fingerprint != body_fingerprint:
        raise KeyReusedError(f"Idempotency-Key {key!r} was already used for a different request body "
                             f"(run {known.run_id}); use a new key for a new batch")
    return None, known
