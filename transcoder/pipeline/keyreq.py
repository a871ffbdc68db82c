"""Keyframe requests for the WebRTC rung (KEYREQ from the edge in, at most one forced IDR per
interval out).

With pre-encoded packets a viewer's PLI never reaches an encoder, so the edge forwards it as
KEYREQ, and OBS ignores PLI anyway: the transcoder answers. Requests within `interval` of the
last accepted one are dropped, not deferred: they were sent before the edge could see the IDR
already on its way (every viewer that joins or loses a packet asks), and an IDR costs several
times a normal frame's bits in the WebRTC rung and its HLS rendition alike.
"""

from __future__ import annotations

import threading
import time

KEY_INTERVAL = 0.5  # seconds: at most one forced IDR this often


class KeyLimiter:
    """Pure: whether a request at `now` (seconds, monotonic) may force an IDR."""

    def __init__(self, interval: float = KEY_INTERVAL) -> None:
        self.interval = interval
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


class KeyRequests:
    """Shared by the link reader (which asks) and the WebRTC rung's encoder thread (which takes)."""

    def __init__(self, interval: float = KEY_INTERVAL) -> None:
        self._limiter = KeyLimiter(interval)
        self._pending = False
        self._at_us: int | None = None  # an IDR at the first frame at or after this time
        self._lock = threading.Lock()

    def request(self, now: float | None = None) -> bool:
        """Ask for an IDR on the next frame; False when rate-limited (the request is dropped)."""
        with self._lock:
            if not self._limiter.allow(time.monotonic() if now is None else now):
                return False
            self._pending = True
            return True

    def at(self, t_us: int) -> None:
        """An IDR on the first frame at or after publisher time `t_us`, whatever the rate."""
        with self._lock:
            self._at_us = t_us

    def take(self, t_us: int) -> bool:
        """Whether the frame at `t_us` must be an IDR; clears what it answers."""
        with self._lock:
            due = self._at_us is not None and t_us >= self._at_us
            if due:
                self._at_us = None
            pending, self._pending = self._pending, False
            return pending or due
