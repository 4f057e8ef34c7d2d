"""Names, classes and name order of every CI of a ``VectorIndex``, so an answer sorts and names on arrays.

An incident of a core switch on a 100k-CI estate names and sorts 20,000 affected CIs, picks the
first-named predecessor for each step of 1,000 service paths and ranks 3,000 stakeholders by name:
per request that was dict look-ups, ``describe`` calls and sorts of strings (half the CPU of a fresh
answer, and the first answer after each index refresh read 20,000 CIs with their attributes from
the store). Here the names are read once per index (``GraphStore.ci_labels``: class and name only)
and turned into integer ranks: ``rank`` orders CIs by (name, id), as every tie-break of the engine
does, and ``dense`` by name alone (equal names, equal rank).

A CI the store does not have (or an index without a store) is named by its id and has no class, as
``describe`` leaves it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from impact.index import MemoryIndex

Array = Any
PAGE = 20_000


@dataclass
class Labels:
    name: list[str]  # per node: display name (the CI's name, else its id)
    cls: list[str | None]  # per node: class (None: not in the store)
    rank: Array  # per node: position when sorted by (name, id); a permutation of 0..n-1
    by_rank: Array  # node at each rank (the inverse permutation)
    dense: Array  # per node: rank of its name alone
    service: Array  # per node: a Service the index knows (``MemoryIndex.is_service`` at build time)


class Numbered(Protocol):
    """What is read of a ``VectorIndex`` here: its index and the CI id of each node number."""

    index: MemoryIndex
    ids: list[str]
    pos: dict[str, int]

    @property
    def n(self) -> int: ...


def labels_of(vx: Numbered) -> Labels:
    """The index's labels, read and ranked on first use and kept with the index's derived structures."""
    cached = vx.index.derived.get("labels")
    if isinstance(cached, Labels) and len(cached.name) == vx.n:
        return cached
    built = _build(vx)
    vx.index.derived["labels"] = built
    return built


def _build(vx: Numbered) -> Labels:
    index, ids = vx.index, vx.ids
    known: dict[str, tuple[str, str]] = {i: (n.cls, n.name) for i, n in index.nodes.items()}
    missing = [i for i in ids if i not in known]
    if missing and index.store is not None:
        for k in range(0, len(missing), PAGE):
            known.update(index.store.ci_labels(missing[k:k + PAGE]))
    name = [known[i][1] if i in known else i for i in ids]
    cls: list[str | None] = [known[i][0] if i in known else None for i in ids]
    n = len(ids)
    by_rank = np.array(sorted(range(n), key=lambda i: (name[i], ids[i])), np.int64)
    rank = np.empty(n, np.int64)
    rank[by_rank] = np.arange(n)
    dense = np.empty(n, np.int64)
    if n:
        sorted_names = [name[i] for i in by_rank.tolist()]
        new = np.array([True] + [a != b for a, b in itertools.pairwise(sorted_names)])
        dense[by_rank] = np.cumsum(new) - 1
    services = index.is_service(i for i in ids if i in index.nodes)
    service = np.array([i in services for i in ids], bool)
    return Labels(name, cls, rank, by_rank, dense, service)
