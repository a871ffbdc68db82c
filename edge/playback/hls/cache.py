"""The edge's cache of hot media objects: each part, segment and init segment read from Redis
once per edge, however many viewers ask for it at the same moment.

Only objects that never change once written go here (their keys carry the msn, the part index
and the writer's epoch). Misses are coalesced: the first request reads Redis, the others await
its result. Absent objects are not cached: they may appear a moment later.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable


class BlobCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._loading: dict[str, asyncio.Future[bytes | None]] = {}

    def peek(self, key: str) -> bytes | None:
        """The object if held, without waiting: the fast path answers a hit at once."""
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return data

    async def get(self, key: str, load: Callable[[str], Awaitable[bytes | None]]) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return data
        task = self._loading.get(key)
        if task is None:
            self.misses += 1
            # Its own task: a request that goes away (cancelled) must not take the read from
            # the others waiting on it.
            task = self._loading[key] = asyncio.ensure_future(self._load(key, load))
        else:
            self.hits += 1
        return await asyncio.shield(task)

    async def _load(self, key: str, load: Callable[[str], Awaitable[bytes | None]]) -> bytes | None:
        try:
            data = await load(key)
        finally:
            self._loading.pop(key, None)
        if data is not None:
            self._put(key, data)
        return data

    def _put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        self._items[key] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)
