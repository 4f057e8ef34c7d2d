"""Recent impact answers, kept until the graph changes: an alert storm asks about the same CI again and again.

An answer is reused only while the warm impact index is the one it was computed on (its write
counter, so any write clears it at the next refresh) and for at most ``TTL_SECONDS`` (its recent
changes and open incidents are relative to now). Concurrent requests for the same answer wait for
one computation instead of each running it. ``Cache-Control: no-cache`` on a request skips it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

TTL_SECONDS = 10.0
MAX_ENTRIES = 1024


class AnswerCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._answers: dict[str, tuple[int | None, float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(kind: str, request: Any) -> str:
        return kind + ":" + json.dumps(request, sort_keys=True, default=str)

    async def get(self, key: str, writes: int | None, compute: Callable[[], Awaitable[Any]]) -> Any:
        found = self._fresh(key, writes)
        if found is not None:
            self.hits += 1
            return found
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._fresh(key, writes)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            value = await compute()
            if len(self._answers) >= MAX_ENTRIES:
                self._answers.clear()
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            self._answers[key] = (writes, time.monotonic(), value)
            return value

    def _fresh(self, key: str, writes: int | None) -> Any:
        entry = self._answers.get(key)
        if entry is None or entry[0] != writes or time.monotonic() - entry[1] > self.ttl:
            return None
        return entry[2]
