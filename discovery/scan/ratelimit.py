"""A token bucket for probes per second, shared by every target of a scan.

Each TCP connect takes one token. The bucket holds at most ``burst`` tokens (by default 20 ms
worth of the rate, at least one), so over any interval ``t`` no more than ``rate * t + burst``
probes start: the rate is a ceiling a network team can rely on, not an average. Waiters queue on
one lock and are served in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``await take()`` returns when a probe may start; ``rate`` is tokens per second."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate / 50)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()
        self.taken = 0

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.taken += 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)
