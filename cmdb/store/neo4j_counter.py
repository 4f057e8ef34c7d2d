"""The write counter on Neo4j (``GraphStore.write_counter``), a mixin of ``Neo4jStore``.

Every write transaction already bumps ``writes`` on the ``(:CmdbMeta {name: 'store'})`` node (its
lock, see ``cmdb.store.neo4j``), and clear and restore bump it too; reading it is one round trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class Neo4jWriteCounter:
    """Mixin: needs the store's ``_read``."""

    if TYPE_CHECKING:
        def _read(self, query: str, **params: Any) -> list[Any]: ...

    def write_counter(self) -> int:
        rows = self._read("OPTIONAL MATCH (m:CmdbMeta {name: 'store'}) RETURN coalesce(m.writes, 0) AS writes")
        return int(rows[0]["writes"]) if rows else 0
