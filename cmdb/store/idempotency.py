"""Idempotency keys: a retried batch POST writes nothing twice and gets the first answer again.

A client (a remote collector, a pipeline) that lost the response to a batch POST cannot know whether
the batch was written. It sends the same ``Idempotency-Key`` again; the store wrote the key *in the
same transaction* as the batch, so the retry finds it and nothing is written twice, even if the
server died between the commit and the response. The record keeps what the answer is made of (the
run id and the run's summary, as in the run ledger) and a fingerprint of the request, so a key
reused for a different body is refused instead of silently answered.

A key is remembered until it is pruned (``cmdb prune``, the scheduler's daily retention job:
``retention.idempotency_keys`` of the configuration, default 7 days, see ``cmdb.retention``). A key
pruned is forgotten: sent again, it is a new key and its batch is written again. So the retention
must exceed the longest time a client keeps retrying one POST.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cmdb.store.base import BatchReader, ChangeSet, IdempotencyRecord

__all__ = ["IdempotencyRecord", "IdempotentWrites"]


class IdempotentWrites(Protocol):
    """What a store offers for idempotent batch writes (both stores; contract tests in tests/contract)."""

    def write_batch_once(self, key: str, fingerprint: str, plan: Callable[[BatchReader], ChangeSet],
                         at: str) -> tuple[ChangeSet | None, IdempotencyRecord]:
        """``write_batch(plan)`` and record ``key`` in the same transaction, unless ``key`` is known: then
        nothing is written and the known record is returned with ``None`` for the changes. ``at`` is
        the key's creation time (what pruning compares)."""

    def idempotency_record(self, key: str) -> IdempotencyRecord | None: ...
