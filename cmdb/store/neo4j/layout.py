"""The Neo4j store's layout: what nodes, relationships and properties hold, and the fixed Cypher fragments.

Data model (every name below is fixed text or comes from a whitelist; input never reaches Cypher
except as parameters):

* ``(:CI:<Class>)`` per CI. The class label is added only for classes of the store's schema whose
  names are CamelCase; ``class`` is also a property and is what queries use. ``attrs`` and
  ``provenance`` are JSON strings so any value round-trips exactly (provenance in a compact form,
  ``prov_blob``; dumps carry the SQLite form); ``aidx`` is a list of ``attr=value`` tokens so
  attribute-equality search runs on the server without JSON parsing. ``updated_at`` is stored only
  once it differs from ``created_at``.
* ``(:CIKey {key, ci_id})`` per identity key, unique by constraint.
* ``(a)-[:TYPE {id, attrs, ...}]->(b)`` per relationship; the Neo4j type comes from the schema's
  relationship whitelist. ``CMDB_OTHER`` holds types outside it, with the type in ``r.type``; other
  relationships store neither ``type`` nor empty ``attrs`` nor an ``updated_at`` equal to
  ``created_at`` (reads fill them in: fewer properties per relationship, the bulk of a load). The
  id is unique by a constraint per type.
* Sightings live on their item: ``sg`` on a CI node or relationship is a list of
  ``source<US>scope<US>[first_seen, last_seen, last_run, missed, status]`` strings (U+001F, which no
  source or scope may contain), so reading an item needs no second look-up and writing one costs no
  node. Lifecycle asks "what did this source see in these scopes": ``(:SightScope {sk, source,
  scope})`` registers the scopes a source has sightings in, and ``(:SightMembers {sk, kind, label,
  ids})`` holds, one node per batch and (source, scope), the items that gained a sighting there
  (append-only, as sightings are never removed; ``label`` is the relationship type to seek by).
* History is packed: ``(:EventPack {n, at0, at1, k, b})`` holds up to ``EVENTS_PER_PACK``
  consecutive events (``n`` is the first seq, ``k`` the count, ``b`` the rows as JSON, see
  ``pack_text``). The ``ev`` list of a CI names the packs holding its events, that of a
  relationship the packs holding the relationship's (a restore files those under both end CIs
  instead; ``(:EventIndex {id, ev})`` stands in for an id without a CI node, which only a dump can
  bring). ``events(ci_ids)`` reads the packs of the CIs and of their relationships and filters
  them exactly; a node per event with three index entries was the largest share of a load's cost.
* ``(:Run)``, ``(:Conflict)``; ``(:CmdbMeta {name: 'store'})`` holds the event counter and the
  layout version (``SCHEMA_VERSION``). Every write transaction first writes that node, so its lock
  serialises writers exactly as SQLite's ``BEGIN IMMEDIATE`` does: a plan's reads stay true until
  its commit.

Each batch is one managed transaction (``execute_write``): the driver retries transient failures
and re-runs the plan, which only reads. Rows are built outside the statements (``Neo4jWriter._build`` gives a
``WriteProgram``, ``_execute`` writes it), so a stream of batches can be pipelined: planned here in
a read transaction, written by another process (``pipeline``, ``write_program``). Driver
exceptions become ``StoreError`` / ``StoreUnavailableError`` here, with the original chained.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 2
"""2: sightings on their items, history in packs (1 had a node per sighting and per event)."""
BATCH_ROWS = 5000
EVENTS_PER_PACK = 64
OTHER_REL = "CMDB_OTHER"
STORE_LABELS = ("CI", "CIKey", "SightScope", "SightMembers", "EventPack", "EventIndex", "Run", "Conflict")
OBSOLETE_SCHEMA = {"cmdb_sighting": "CONSTRAINT", "cmdb_sighting_scope": "INDEX", "cmdb_event_ci": "INDEX",
                   "cmdb_event_peer": "INDEX", "cmdb_event_at": "INDEX"}
TABLES = ("ci", "ci_key", "sighting", "rel", "event", "conflict", "run", "discovery_run")

CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
REL_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
ATTR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# ``updated_at`` is stored only once it differs from ``created_at`` (most CIs of a load never change).
CI_MAP = ("c {.id, .class, .name, .status, .attrs, .created_at, updated_at: coalesce(c.updated_at, c.created_at),"
           " .provenance, .sg}")
CI_MAP_TX = CI_MAP[:-1] + ", eid: elementId(c)}"  # the element id, for writes in the same transaction
SEP = "\x1f"
# A relationship stores ``type`` only under CMDB_OTHER (elsewhere it is the Neo4j type), ``attrs`` only
# when it has any, and ``updated_at`` only once updated: three properties fewer per relationship
# written, the bulk of a load.
REL_TYPE = "coalesce(r.type, type(r))"
REL_MAP = (f"r {{.id, type: {REL_TYPE}, attrs: coalesce(r.attrs, '{{}}'), .status, .created_at,"
            " updated_at: coalesce(r.updated_at, r.created_at)}")
REL_MAP_SG = REL_MAP[:-1] + ", .sg, .prov}"  # what a plan reads: sightings and provenance too
LOAD_CIS = f"UNWIND $ids AS id MATCH (c:CI {{id: id}}) RETURN {CI_MAP} AS ci"
LOCK_META = (
    "MERGE (m:CmdbMeta {name: 'store'}) ON CREATE SET m.seq = 0, m.schema_version = $version"
    " SET m.writes = coalesce(m.writes, 0) + 1 RETURN m.seq AS seq, m.restoring AS restoring, m.writes AS writes"
)
BUMP_WRITES = "m.writes = coalesce(m.writes, 0) + 1"  # every write that is not a batch moves the counter too

