"""The write counter on Neo4j (``GraphStore.write_counter``), a part of ``Neo4jStore``.

Every write transaction already bumps ``writes`` on the ``(:CmdbMeta {name: 'store'})`` node (its
lock, see ``cmdb.store.neo4j.layout``), and clear and restore bump it too; reading it is one round trip.
"""

from __future__ import annotations

from cmdb.store.neo4j.connection import Neo4jConnection


class Neo4jWriteCounter(Neo4jConnection):
    """The store's write counter part."""


    def write_counter(self) -> int:
        rows = self._read("OPTIONAL MATCH (m:CmdbMeta {name: 'store'}) RETURN coalesce(m.writes, 0) AS writes")
        return int(rows[0]["writes"]) if rows else 0
