"""Pruning old operational records on Neo4j (``cmdb.store.retention``), a part of ``Neo4jStore``.

Deletes run in chunks of ``CHUNK`` nodes, each its own transaction, so a first prune of a store that
kept years of messages does not need one huge transaction; a prune interrupted half way leaves only
old records still to prune. A discovery run's end lives in its JSON ``data``, so candidates (started
before the cut-off: a run cannot end before it starts) are read and their end compared here.
"""

from __future__ import annotations

import json

from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.retention import check_kind

CHUNK = 5000
_MATCH: dict[str, str] = {
    "jobs": "MATCH (n:CmdbJob) WHERE (n.state IN ['finished', 'failed'] AND n.finished_at < $before)"
            " OR (n.state = 'running' AND n.heartbeat_at < $before)",
    "idempotency_keys": "MATCH (n:IdempotencyKey) WHERE n.created_at < $before",
    "outbox": "MATCH (n:OutboxMessage) WHERE n.state IN ['sent', 'dead'] AND n.next_attempt_at < $before",
    "health_snapshots": "MATCH (n:HealthSnapshot) WHERE n.at < $before",
}


class Neo4jRetention(Neo4jConnection):
    """``prune_records`` for every kind of ``cmdb.store.retention.PRUNE_KINDS``."""

    def prune_records(self, kind: str, before: str, *, dry_run: bool = False) -> int:
        check_kind(kind)
        if kind == "discovery_runs":
            return self._prune_discovery_runs(before, dry_run)
        match = _MATCH[kind]
        if dry_run:
            return int(self._read(f"{match} RETURN count(n) AS n", before=before)[0]["n"])
        total = 0
        while True:
            n = int(self._write(f"{match} WITH n LIMIT {CHUNK} DETACH DELETE n RETURN count(*) AS n",
                                before=before)[0]["n"])
            total += n
            if n < CHUNK:
                return total

    def _prune_discovery_runs(self, before: str, dry_run: bool) -> int:
        rows = self._read("MATCH (n:DiscoveryRun) WHERE n.started_at < $before RETURN n.run_id AS id, n.data AS data",
                          before=before)
        ended = [str(r["id"]) for r in rows
                 if (end := json.loads(r["data"]).get("ended_at")) is not None and end < before]
        if not dry_run:
            for i in range(0, len(ended), CHUNK):
                self._write("UNWIND $ids AS id MATCH (n:DiscoveryRun {run_id: id}) DELETE n", ids=ended[i:i + CHUNK])
        return len(ended)
