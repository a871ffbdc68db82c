"""A viewer's track: shared pre-encoded packets in, the same packets to one RTCRtpSender out.

aiortc's sender only packetizes an `av.Packet` that `recv()` returns, so every viewer gets the
very packet objects the feed made once. Each track has its own bounded queue: a viewer whose
sender falls behind (a slow or stuck network path) loses its backlog and resumes at the next
keyframe, and never holds back the feed or the other viewers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class FeedTrack(MediaStreamTrack):
    def __init__(self, kind: str, limit: int, on_skip: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self.limit = limit
        self.on_skip = on_skip
        # A decoder can start only at a keyframe: video waits for one, first and after a skip.
        self.waiting_key = kind == "video"
        self.skips = 0
        self.sent = 0
        self._queue: deque[av.Packet[Any]] = deque()
        self._ready = asyncio.Event()
        self._ended = False

    def put(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self._ended:
            return
        if self.waiting_key:
            if not keyframe:
                return
            self.waiting_key = False
        if len(self._queue) >= self.limit:
            self._queue.clear()
            self.skips += 1
            if self.kind == "video" and not keyframe:
                self.waiting_key = True
                if self.sent:
                    # A viewer that is not reading yet (ICE, DTLS) asks for nothing.
                    self.on_skip()
                return
        self._queue.append(packet)
        self._ready.set()

    def end(self) -> None:
        """No more packets: the sender's next recv raises and it stops."""
        self._ended = True
        self._ready.set()
        self.stop()

    async def recv(self) -> av.Packet[Any]:
        while not self._queue:
            if self._ended:
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.sent += 1
        return self._queue.popleft()
