"""The edge's media cache: one read per object, shared, and not lost to a caller that leaves."""

from __future__ import annotations

import asyncio

import pytest

from edge.playback.hls.cache import BlobCache


async def test_a_read_survives_the_caller_that_started_it_going_away() -> None:
    cache = BlobCache(1 << 20)
    release = asyncio.Event()
    reads: list[str] = []

    async def load(key: str) -> bytes | None:
        reads.append(key)
        await release.wait()
        return b"bytes of " + key.encode()

    first = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    first.cancel()  # the viewer that asked first hangs up
    release.set()
    assert await second == b"bytes of k"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await cache.get("k", load) == b"bytes of k"  # from memory now
    assert reads == ["k"] and (cache.misses, cache.hits) == (1, 2)


async def test_absent_objects_are_not_cached_and_the_budget_holds() -> None:
    cache = BlobCache(10)

    async def load(key: str) -> bytes | None:
        return None if key == "missing" else b"123456"

    assert await cache.get("missing", load) is None
    assert await cache.get("missing", load) is None
    assert cache.misses == 2
    await cache.get("a", load)
    await cache.get("b", load)  # 12 bytes over a budget of 10: "a" goes
    assert cache.size == 6
