"""The low-latency feed to the edge (CODEC and PACKET frames from encoder threads in, one sender
thread writing them to the media link out).

The WebRTC rung's thread and the audio thread both produce feed frames; one sender thread owns
the writes, so frames never interleave on the socket and encoders never wait for the edge. When
the edge does not read, the queue fills and packets are dropped: the HLS output must never stall
because of the feed. After a dropped video packet the rest of its GOP would not decode, so video
is skipped until the next keyframe and one IDR is asked for (`on_loss`) to shorten the wait.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from cluster.medialink import frames
from cluster.medialink.frames import FEED_VIDEO, CodecConfig, MediaPacket
from transcoder.pipeline.control import POLL, Control, spawn

FEED_QUEUE = 256  # frames waiting for the socket: a few seconds of video and audio


class Feed:
    def __init__(
        self,
        send: Callable[[bytes], None],
        control: Control,
        log: logging.LoggerAdapter[Any],
        on_loss: Callable[[], object] = lambda: None,
        limit: int = FEED_QUEUE,
    ) -> None:
        self._send = send
        self._control = control
        self._log = log
        self._on_loss = on_loss
        self._limit = limit
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._skipping = False  # video waits for a keyframe after a drop
        self._full = False  # for one log line each time the queue fills
        self.dropped = 0

    def codec(self, cfg: CodecConfig) -> None:
        """Queued whatever the backlog: a track's packets are useless without it."""
        with self._cond:
            self._queue.append(frames.encode_codec(cfg))
            self._cond.notify()

    def packet(self, pkt: MediaPacket) -> bool:
        """Queue a packet unless the edge is behind; False when dropped."""
        video = pkt.track == FEED_VIDEO
        with self._cond:
            if video and self._skipping and pkt.keyframe:
                self._skipping = False
            full = len(self._queue) >= self._limit
            if full and not self._full:
                self._log.warning("feed: the edge is behind; dropping (%d so far)", self.dropped)
            self._full = full
            if not full and not (video and self._skipping):
                self._queue.append(frames.encode_packet(pkt))
                self._cond.notify()
                return True
            self.dropped += 1
            lost = video and not self._skipping
            self._skipping = self._skipping or video
        if lost:
            self._on_loss()
        return False

    def start(self) -> threading.Thread:
        return spawn("feed", self._control, self._log, self._run)

    def backlog(self) -> int:
        with self._cond:
            return len(self._queue)

    def _run(self) -> None:
        stopped = self._control.stopped
        while not stopped.is_set():
            with self._cond:
                if not self._queue:
                    self._cond.wait(POLL)
                    continue
                # Whatever is queued goes in one write: a burst (a GOP replay, an edge that was
                # slow for a moment) costs one syscall rather than one per frame, and nothing
                # waits for more to come.
                data = b"".join(self._queue)
                self._queue.clear()
            try:
                self._send(data)
            except OSError:
                # The link broke or was closed: its reader halts the worker, not the feed.
                return
