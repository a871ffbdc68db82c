"""One output timeline across workers: feed timestamps in, continuous monotonic timestamps out.

Pure (the caller passes the clock). Each worker stamps its feed on the publisher's clock, but a
successor can restart behind or ahead of where its predecessor stopped (it resumes from the GOP
cache, or the publisher's clock jumped). Viewers keep their RTP senders across a switch, so
their RTP timestamps must keep moving forward by about the time that really passed: a jump
backwards makes a receiver drop or re-order frames, a jump far ahead stalls its jitter buffer.
So every source (epoch) gets one offset, shared by its tracks to keep lip sync, chosen when its
first packet is placed: that packet follows the last one emitted by the real elapsed time, or by
one frame if less time passed.
"""

from __future__ import annotations

DEFAULT_STEP_US = 33_333  # one frame at 30 fps, before any step was seen


class Timeline:
    def __init__(self) -> None:
        self.epoch = 0
        self._offset_us: int | None = None
        self._last_out_us: int | None = None  # the latest timestamp emitted on any track
        self._last_wall = 0.0
        self._last_track: dict[int, int] = {}
        self._step_us = DEFAULT_STEP_US  # the latest pts step seen on the reference track

    def switch(self, epoch: int) -> None:
        """A new source: its first placed packet will get a fresh offset."""
        self.epoch = epoch
        self._offset_us = None

    @property
    def anchored(self) -> bool:
        return self._offset_us is not None

    def place(self, track: int, pts_us: int, now: float, reference: bool = False) -> int | None:
        """The output timestamp of a packet, or None when it would not move its track forward.

        `now` is wall time in seconds (monotonic); `reference` marks the track whose steps
        define "one frame" (video).
        """
        fresh = self._offset_us is None
        if self._offset_us is None:
            if self._last_out_us is None:
                target = 0
            else:
                elapsed = int((now - self._last_wall) * 1_000_000)
                target = self._last_out_us + max(elapsed, self._step_us)
            self._offset_us = target - pts_us
        out = pts_us + self._offset_us
        last = self._last_track.get(track)
        if last is not None and out <= last:
            return None
        if reference and last is not None and not fresh:
            self._step_us = out - last
        self._last_track[track] = out
        if self._last_out_us is None or out >= self._last_out_us:
            self._last_out_us, self._last_wall = out, now
        return out
