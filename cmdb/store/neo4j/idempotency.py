"""Idempotency keys on Neo4j (``cmdb.store.idempotency``), a mixin of ``Neo4jStore``.

``(:IdempotencyKey {key, fingerprint, run_id, stats, created_at})`` is created in the batch's own
transaction, after the store's lock, so a key exists exactly when its batch was written and two
concurrent requests with one key cannot both write. The unique constraint is created on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cmdb.store.base import BatchReader, ChangeSet
from cmdb.store.idempotency import IdempotencyRecord
from cmdb.store.neo4j.layout import OTHER_REL
from cmdb.store.neo4j.reader import TxReader
from cmdb.store.neo4j.writer import Neo4jWriter

_CONSTRAINT = ("CREATE CONSTRAINT cmdb_idempotency_key IF NOT EXISTS FOR (k:IdempotencyKey) REQUIRE k.key IS UNIQUE")
_GET = ("MATCH (k:IdempotencyKey {key: $key})"
        " RETURN k.key AS key, k.fingerprint AS fp, k.run_id AS run_id, k.stats AS stats, k.created_at AS at")


def _record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(row["key"], row["fp"], row["run_id"], json.loads(row["stats"]), row["at"])


class Neo4jIdempotency(Neo4jWriter):
    """Batches written once per idempotency key: the key is stored in the batch's own transaction."""

    _idempotency_ready = False
    _rel_types: list[str]


    def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        rows = self._read(_GET, key=key)
        return _record(rows[0]) if rows else None

    def write_batch_once(self, key: str, fingerprint: str, plan: Callable[[BatchReader], ChangeSet],
                         at: str) -> tuple[ChangeSet | None, IdempotencyRecord]:
        if not self._idempotency_ready:
            self._autocommit(_CONSTRAINT, "creating the idempotency key constraint")
            self._idempotency_ready = True

        def work(tx: Any) -> tuple[ChangeSet | None, IdempotencyRecord]:
            meta = self._lock(tx)
            known = tx.run(_GET, key=key).single()
            if known is not None:
                return None, _record(known)
            reader = TxReader(tx, [*self._rel_types, OTHER_REL])
            cs = plan(reader)
            prog = self._build(cs, int(meta["seq"] or 0), reader)
            self._execute(tx, prog)
            record = IdempotencyRecord(key, fingerprint, cs.run.run_id, dict(cs.run.stats), at)
            tx.run("CREATE (:IdempotencyKey {key: $key, fingerprint: $fp, run_id: $run_id, stats: $stats,"
                   " created_at: $at})", key=key, fp=fingerprint, run_id=record.run_id,
                   stats=json.dumps(record.stats, sort_keys=True), at=at).consume()
            return cs, record

        result: tuple[ChangeSet | None, IdempotencyRecord] = self._in_write(work, "writing a batch")
        return result
