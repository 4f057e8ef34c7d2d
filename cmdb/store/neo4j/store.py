"""``Neo4jStore``: the GraphStore protocol on Neo4j, assembled from the store's parts.

Each part is a class on ``Neo4jConnection`` in its own module: ``queries`` (reads and traversal),
``writer`` (batch writes), ``restore`` (dump, restore, clear). A new capability adds its own part
(a module beside these: tasks, tokens, idempotency, counter) and one base below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cmdb.store.neo4j.conflicts import Neo4jConflicts
from cmdb.store.neo4j.counter import Neo4jWriteCounter
from cmdb.store.neo4j.dry_plans import Neo4jDryPlans
from cmdb.store.neo4j.health import Neo4jHealth
from cmdb.store.neo4j.idempotency import Neo4jIdempotency
from cmdb.store.neo4j.jobs import Neo4jJobs
from cmdb.store.neo4j.merges import Neo4jMerges
from cmdb.store.neo4j.queries import Neo4jQueries
from cmdb.store.neo4j.recent import Neo4jRecentEvents
from cmdb.store.neo4j.rel_provenance import Neo4jRelProvenance
from cmdb.store.neo4j.rel_reads import Neo4jRelReads
from cmdb.store.neo4j.retention import Neo4jRetention
from cmdb.store.neo4j.schema_ext import Neo4jSchemaExtensions
from cmdb.store.neo4j.tasks import Neo4jTasks
from cmdb.store.neo4j.tokens import Neo4jTokens
from cmdb.store.neo4j.writer import Neo4jWriter

if TYPE_CHECKING:
    from cmdb.store.neo4j.pipeline import Neo4jPipeline


class Neo4jStore(Neo4jTasks, Neo4jTokens, Neo4jJobs, Neo4jIdempotency, Neo4jWriteCounter, Neo4jMerges,
                 Neo4jSchemaExtensions, Neo4jQueries, Neo4jWriter, Neo4jRelProvenance, Neo4jHealth,
                 Neo4jRecentEvents, Neo4jRelReads, Neo4jDryPlans, Neo4jRetention, Neo4jConflicts):
    """GraphStore on a Neo4j 5 server, through the official driver."""

    def pipeline(self) -> Neo4jPipeline[Any]:
        """A pipelined writer for a stream of batches (``cmdb.ingest_pipeline.ingest_many``)."""
        from cmdb.store.neo4j.pipeline import Neo4jPipeline

        return Neo4jPipeline(self)
