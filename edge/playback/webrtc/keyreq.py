"""Keyframe requests from an edge's viewers to the current worker, coalesced.

Every viewer that joins, skips its backlog or sends a PLI/FIR wants an IDR, and one IDR serves
them all: requests go out at most once per `interval`, and one arriving too early is sent when
the interval ends (or dropped if a keyframe went out meanwhile). The worker rate-limits too, by
dropping; deferring here means the last asker is not left waiting for a whole GOP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cluster.logs import StreamLogger


class KeyRequests:
    def __init__(self, interval: float, clock: Callable[[], float], log: StreamLogger) -> None:
        self.interval = interval
        self.clock = clock
        self.log = log
        self.sent = 0
        self.upstream: Callable[[], bool] | None = None  # sends one KEYREQ; False if it cannot
        self._last = -1e9
        self._pending: asyncio.TimerHandle | None = None

    def new_upstream(self, send: Callable[[], bool] | None) -> None:
        """Another worker (or none): its rate is its own, and nothing is pending for it yet."""
        self.upstream = send
        self.answered()
        self._last = -1e9

    def request(self, reason: str) -> None:
        if self._pending is not None:
            return
        wait = self._last + self.interval - self.clock()
        if wait > 0:
            self._pending = asyncio.get_running_loop().call_later(wait, self._send, reason)
        else:
            self._send(reason)

    def answered(self) -> None:
        """A keyframe just went out to every viewer: a request waiting for its turn is moot."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def _send(self, reason: str) -> None:
        self._pending = None
        up = self.upstream
        if up is None or not up():
            return  # no worker now; its successor is asked once its frames are live
        self._last = self.clock()
        self.sent += 1
        self.log.debug("KEYREQ: %s", reason)
