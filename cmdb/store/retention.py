"""Retention: operational records a store may forget once they are old, and the capability to prune them.

A CMDB runs for months; some of what it keeps is bookkeeping of its own operation, not the estate
or its audit trail. These kinds are pruned, each by the time it *ended* (``cmdb.retention`` picks
the cut-off per kind from the ``retention:`` section of the configuration):

``jobs``
    API background jobs (``cmdb.store.jobs``) that finished or failed before the cut-off, and jobs
    still marked running whose heartbeat stopped before it (abandoned long ago: a live runner
    refreshes its heartbeat every few seconds). A job that is running stays.
``idempotency_keys``
    ``Idempotency-Key`` records of ``POST /batches`` created before the cut-off. A pruned key is
    forgotten: the same key sent again is a new key, and its batch is written again. The age must
    therefore exceed any client's retry window (the configuration refuses less than a day).
``outbox``
    Notification messages delivered (``sent``) or given up (``dead``) before the cut-off, by the
    time of their last attempt. Pending messages stay, however old. A message's idempotency key
    de-duplicates only while the message is kept.
``health_snapshots``
    Health report scores (``cmdb health``) taken before the cut-off: the trend loses its oldest points.
``discovery_runs``
    Discovery run records (per-target outcomes) of runs that ended before the cut-off; a run still
    going (no end yet) stays.

What is never pruned, and why:

* CIs, relationships, provenance, sightings and history events: the audit trail; ``as_of`` and
  ``cmdb history`` rebuild the past from events.
* The run ledger (``runs``): ageing asks the scope of the run that set each attribute value
  (``BatchReader.run_scopes``; an unknown run covers nothing, so its values would never age out) and
  the health report's staleness reads each source's last runs from it.
* Tasks: a closed task is what stops the expiry cycle raising the same (kind, CI, expiry) again, and
  it is the record of who acknowledged and resolved what.
* Identity conflicts in any state (open, closed, resolved): a ``keep_separate`` resolution keeps two
  CIs apart for good; closed and resolved ones are the record of how identity was settled.
* Tokens, leases and schema extensions: few, and live configuration.

Contract tests: ``tests/contract/test_retention_contract.py``.
"""

from __future__ import annotations

from typing import Protocol

from cmdb.errors import BadInputError

PRUNE_KINDS: tuple[str, ...] = ("jobs", "idempotency_keys", "outbox", "health_snapshots", "discovery_runs")


def check_kind(kind: str) -> None:
    if kind not in PRUNE_KINDS:
        raise BadInputError(f"cannot prune {kind!r}: the kinds a store prunes are {', '.join(PRUNE_KINDS)}")


class RetentionStore(Protocol):
    """The pruning capability of every store (see the module docstring)."""

    def prune_records(self, kind: str, before: str, *, dry_run: bool = False) -> int:
        """Delete the records of ``kind`` (one of ``PRUNE_KINDS``) that ended before ``before`` (an ISO time
        of ``cmdb.store.base.iso``); how many. ``dry_run`` counts them and deletes nothing. An unknown kind
        is a BadInputError."""
