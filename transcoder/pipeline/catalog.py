"""The stream's rendition list for the multivariant playlist (ready renditions in, one key out).

Published once every expected rendition has written its first segment (its codec string and
frame rate are only known then), so players never see a ladder without its audio.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from cluster.hot import keys
from cluster.hot.fence import FencedBatch
from cluster.hot.model import RenditionInfo, renditions_to_json

# A rendition still not ready this many segment durations (wall clock) after the first one was
# is left out rather than holding the list back. Wall clock, not segment counts: a GOP replay
# produces several segments of one rendition in a burst.
PATIENCE = 3
# The list is written again this often even unchanged: a Redis that restarted empty gets it back.
REFRESH = 10.0


class Catalog:
    """The stream's rendition list, published once every expected rendition has written."""

    def __init__(
        self,
        stream: str,
        ttl_ms: int,
        gop_seconds: float,
        write: Callable[[FencedBatch], None],
        log: logging.LoggerAdapter[Any],
    ) -> None:
        self.stream = stream
        self.ttl_ms = ttl_ms
        self.patience = PATIENCE * gop_seconds
        self.write = write
        self.log = log
        self._since: float | None = None  # when the first rendition became ready
        self._lock = threading.Lock()
        self._expected: list[str] = []
        self._ready: dict[str, RenditionInfo] = {}
        self._published: list[RenditionInfo] | None = None
        self._at = 0.0  # when the list was last written

    def expect(self, names: list[str]) -> None:
        with self._lock:
            self._expected = [*self._expected, *(n for n in names if n not in self._expected)]

    def ready(self, info: RenditionInfo) -> None:
        with self._lock:
            self._ready[info.name] = info
            self._since = self._since or time.monotonic()
            complete = all(n in self._ready for n in self._expected)
            if not complete and time.monotonic() - self._since < self.patience:
                return
            order = [*self._expected, *(n for n in self._ready if n not in self._expected)]
            items = [self._ready[n] for n in order if n in self._ready]
            if items == self._published and time.monotonic() - self._at < REFRESH:
                return
            if not complete:
                missing = [n for n in self._expected if n not in self._ready]
                self.log.warning("publishing renditions without %s", missing)
            # Under the lock, so a smaller list can never overwrite a larger one.
            batch = FencedBatch().set(
                keys.renditions(self.stream), renditions_to_json(items), self.ttl_ms
            )
            try:
                self.write(batch)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.log.warning("rendition list not written (retried next segment): %s", exc)
                return
            self._published = items
            self._at = time.monotonic()
