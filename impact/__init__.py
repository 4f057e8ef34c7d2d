"""Impact analysis: which services a failure or a change hurts, how badly, why, and whom to tell.

* ``engine.blast_radius`` propagates failures against dependency edges by the schema's impact
  semantics, with quorum for redundancy groups, over any ``source.ImpactSource``: a GraphStore by
  frontier expansion (``source.StoreSource``), an in-memory index (``index.MemoryIndex``) or the
  graph replayed from history (``asof.index_as_of``).
* ``stakeholders``, ``priority``, ``incident``, ``change`` and ``spof`` answer the operational
  questions on top; ``cli`` is ``cmdb impact ...``.
* Acting on its own: ``expiry_tasks`` (the expiry rule), ``assign`` (who gets a task, walked on the
  graph), ``outbox``/``render``/``incident_notify`` (notices queued in the store's outbox from
  replaceable templates), ``channels`` and ``delivery`` (SMTP and webhooks, retries, dead letters),
  ``scheduler`` with its job registry ``scheduler_jobs``, all configured by ``automation_config``;
  ``automation_cli`` is ``cmdb expiry|outbox|incidents|scheduler``.
"""

from impact.engine import AffectedService, BlastRadius, blast_radius
from impact.index import MemoryIndex
from impact.source import ImpactSource, StoreSource
from impact.states import State

__all__ = ["AffectedService", "BlastRadius", "ImpactSource", "MemoryIndex", "State", "StoreSource", "blast_radius"]
