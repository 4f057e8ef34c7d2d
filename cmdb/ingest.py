"""``ingest``: the one door into the store.

A batch is validated whole before the store is touched, then identified against the store in bulk,
reconciled attribute by attribute, and written in one transaction together with its history events,
sightings, run-ledger entry and any identity conflicts. Re-ingesting an unchanged batch refreshes
sightings and writes no history.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cmdb.batch import Batch
from cmdb.model import Schema
from cmdb.planning.planner import Planner
from cmdb.planning.state import CLASS_ATTR, DEFAULT_SCOPE, IngestResult, derive_status, new_ci_id
from cmdb.reconcile import ReconcileConfig
from cmdb.schema_store import store_schema
from cmdb.scopes import scope_covers
from cmdb.store.base import GraphStore

# Re-exported: the names callers have always taken from here.
__all__ = ["CLASS_ATTR", "DEFAULT_SCOPE", "IngestResult", "derive_status", "ingest", "new_ci_id", "scope_covers"]


def ingest(
    store: GraphStore,
    batch: Batch,
    *,
    schema: Schema | None = None,
    config: ReconcileConfig | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Identify, reconcile and write ``batch`` atomically; raises BadInputError naming the bad item."""
    schema = schema or store_schema(store)
    config = config or ReconcileConfig()
    now = now or datetime.now(UTC)
    planner = Planner(schema, config, batch, now)
    planner.prepare()
    store.write_batch(planner.plan)
    result = planner.result
    result.events = planner.event_count
    return result
