"""The newest history events near a set of CIs on Neo4j (``GraphStore.recent_events``), a part of ``Neo4jStore``.

History is packed per CI and relationship (``cmdb.store.neo4j.layout``): the packs of the CIs are
read as ``events`` reads them, and only the newest ``limit`` events are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cmdb.store.base import Event


class Neo4jRecentEvents:
    """The store's recent-events part; needs the store's ``events``."""

    if TYPE_CHECKING:
        def events(self, ci_ids: Iterable[str] | None = None, since: str | None = None, until: str | None = None,
                   limit: int | None = None) -> list[Event]: ...

    def recent_events(self, ci_ids: Iterable[str], since: str | None = None, until: str | None = None,
                      limit: int = 50) -> list[Event]:
        wanted = set(ci_ids)
        if limit <= 0 or not wanted:
            return []
        return self.events(wanted, since=since, until=until)[-limit:][::-1]
