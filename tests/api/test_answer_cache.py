"""The impact answer cache: one computation for concurrent askers, a new one when the graph changes,
and a stale answer served (and recomputed behind it) once it is older than its TTL."""

from __future__ import annotations

import asyncio

from api.answer_cache import AnswerCache


def test_concurrent_askers_share_one_computation_and_writes_retire_it() -> None:
    cache = AnswerCache(ttl=60)
    calls: list[int] = []
    version = [1]

    async def compute() -> int:
        calls.append(version[0])
        await asyncio.sleep(0.05)
        return version[0] * 10

    async def scenario() -> None:
        got = await asyncio.gather(*(cache.get("k", lambda: version[0], compute) for _ in range(8)))
        assert got == [10] * 8 and calls == [1]
        version[0] = 2  # the graph changed
        assert await cache.get("k", lambda: version[0], compute) == 20
        assert calls == [1, 2]

    asyncio.run(scenario())


def test_a_stale_answer_is_served_while_it_is_recomputed() -> None:
    cache = AnswerCache(ttl=0.05)
    n = [0]

    async def compute() -> int:
        n[0] += 1
        await asyncio.sleep(0.05)
        return n[0]

    async def scenario() -> None:
        assert await cache.get("k", lambda: 7, compute) == 1
        await asyncio.sleep(0.1)
        assert await cache.get("k", lambda: 7, compute) == 1  # stale, served at once
        await asyncio.sleep(0.15)
        assert await cache.get("k", lambda: 7, compute) == 2  # recomputed behind it

    asyncio.run(scenario())
