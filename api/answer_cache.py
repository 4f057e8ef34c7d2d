"""Recent impact answers, kept while the graph is unchanged: an alert storm asks about the same CI again and again.

An answer is reused only while the warm impact index is the one it was computed on (its build,
``WarmImpactIndex.version``: a write anywhere, or a new schema, retires it at the next index refresh).
Its recent changes and open incidents are relative to now, so after ``TTL_SECONDS`` it is recomputed in
the background while the previous answer is still served (a core switch of a 100k-CI estate takes half
a minute to analyse; no request should wait for that twice). Concurrent requests for an answer that is not
there wait for one computation. ``Cache-Control: no-cache`` on a request skips the cache.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

TTL_SECONDS = 60.0
MAX_ENTRIES = 256


class AnswerCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._answers: dict[str, tuple[int | None, float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(kind: str, request: Any) -> str:
        return kind + ":" + json.dumps(request, sort_keys=True, default=str)

    async def get(self, key: str, writes: Callable[[], int | None], compute: Callable[[], Awaitable[Any]]) -> Any:
        """The answer under ``key`` for the graph version ``writes()`` names, else ``compute()``'s, kept under
        the version read after it ran (the first computation may build the index)."""
        entry = self._answers.get(key)
        if entry is not None and entry[0] == writes():
            self.hits += 1
            if time.monotonic() - entry[1] > self.ttl and key not in self._refreshing:
                self._refreshing.add(key)
                task = asyncio.get_running_loop().create_task(self._refresh(key, writes, compute))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return entry[2]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._answers.get(key)
            if entry is not None and entry[0] == writes():
                self.hits += 1
                return entry[2]
            self.misses += 1
            value = await compute()
            self._store(key, writes(), value)
            return value

    async def _refresh(self, key: str, writes: Callable[[], int | None],
                       compute: Callable[[], Awaitable[Any]]) -> None:
        try:
            value = await compute()
            self._store(key, writes(), value)
        except Exception:  # the old answer stays until the graph changes; the next request retries
            pass
        finally:
            self._refreshing.discard(key)

    def _store(self, key: str, writes: int | None, value: Any) -> None:
        if len(self._answers) >= MAX_ENTRIES and key not in self._answers:
            self._answers.clear()
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        self._answers[key] = (writes, time.monotonic(), value)
