"""The ingest planner: one batch turned into the ChangeSet a store writes in one transaction.

* ``state``: what every part shares (the batch, clock, result; ``IngestResult``, ``derive_status``);
* ``prepare``: validation and item merging, before the store is touched (pure);
* ``cis``: CIs matched, created, reconciled, or recorded as identity conflicts;
* ``rels``: relationships resolved, checked and reconciled;
* ``lifecycle``: what a complete run did not see is aged (stale, retired);
* ``planner``: ``Planner``, the parts assembled, and ``plan``.
"""

from cmdb.planning.planner import Planner
from cmdb.planning.state import IngestResult

__all__ = ["IngestResult", "Planner"]
