"""``GraphStore.recent_events``: the newest events of ``events(ci_ids, since, until)``, newest first, on every store.

The reference is ``events`` itself, cut and reversed; the estate has CI events, relationship events
(which carry both ends) and several batches, so windows and limits fall between and inside them.
"""

from __future__ import annotations

import pytest

import cmdb.store.sqlite_recent
from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.base import Event, GraphStore


def _estate(store: GraphStore) -> dict[str, str]:
    for round_ in range(4):
        ingest(store, Batch.from_dict({"source": "import:test", "cis": [
            *({"ref": f"h{i}", "class": "Server", "hostname": f"h{i}", "fqdn": f"h{i}.example",
               "os": f"Debian {round_}" if i % 2 == round_ % 2 else "Debian"} for i in range(6)),
            {"ref": "app", "class": "Application", "name": "app", "version": str(round_)},
        ], "relationships": [{"type": "RUNS_ON", "from": "app", "to": f"h{round_}"}]}))
    ids = {}
    for e in store.events():
        if e.kind.startswith("ci") and e.ci_id:
            ci = store.get_ci(e.ci_id)
            assert ci is not None
            ids[ci.name or ci.id] = ci.id
    return ids


def _key(events: list[Event]) -> list[tuple[object, ...]]:
    return [(e.at, e.kind, e.ci_id, e.peer_id, e.attr, e.old, e.new, e.source) for e in events]


def _check(store: GraphStore, ids: list[str], since: str | None, until: str | None, limit: int) -> None:
    want = store.events(ids, since=since, until=until)[-limit:][::-1] if limit > 0 else []
    got = store.recent_events(ids, since=since, until=until, limit=limit)
    assert _key(got) == _key(want), (ids, since, until, limit)


def test_recent_events_are_the_newest_of_events_newest_first(store: GraphStore) -> None:
    ids = _estate(store)
    everything = store.events()
    assert len(everything) > 30
    times = sorted({e.at for e in everything})
    sets = [[ids["app"]], [ids["h1"], ids["h2"]], list(ids.values()), [ids["h5"], "no-such-ci"]]
    windows = [(None, None), (times[len(times) // 2], None), (None, times[len(times) // 2]), (times[1], times[-2])]
    for chosen in sets:
        for since, until in windows:
            for limit in (1, 3, 50):
                _check(store, chosen, since, until, limit)
    assert store.recent_events([], limit=5) == []
    assert store.recent_events(list(ids.values()), limit=0) == []
    # A relationship's events belong to both its ends.
    rel_events = [e for e in store.recent_events([ids["h0"]], limit=100) if e.peer_id]
    assert rel_events and all(ids["h0"] in (e.ci_id, e.peer_id) for e in rel_events)


@pytest.mark.parametrize("budget", [1, 3, 7])
def test_recent_events_beyond_the_walked_window(store: GraphStore, budget: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite walks the newest ``SCAN_BUDGET`` events first and looks CIs up one by one past them: a small
    budget makes every answer take the second way, which must give the same events."""
    monkeypatch.setattr(cmdb.store.sqlite_recent, "SCAN_BUDGET", budget)
    ids = _estate(store)
    times = sorted({e.at for e in store.events()})
    for chosen in ([ids["app"]], [ids["h0"], ids["h3"]], list(ids.values())):
        for since, until in ((None, None), (times[1], times[-2])):
            for limit in (1, 4, 50):
                _check(store, chosen, since, until, limit)
