"""Timing decisions (pure: publisher timestamps in, keep/cut/where decisions out).

Everything is decided on the publisher's clock (microseconds), never on arrival order or wall
time, so that every rendition of this worker, and a successor picking the stream up from a GOP
replay, makes the same decisions for the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass

US = 1_000_000


@dataclass(frozen=True)
class Grid:
    """Segment boundaries: multiples of the GOP on the publisher clock, counted from zero.

    All renditions force a keyframe on the first frame of each segment, so their segments align.
    Boundaries come from absolute publisher time rather than from where this worker started, so
    that a successor's boundaries fall where its predecessor's would have. The first segment
    absorbs a boundary closer than half a GOP to the start (no runt first segment).
    """

    gop_us: int
    origin_us: int  # publisher time of this worker's first output frame

    @classmethod
    def of(cls, gop_seconds: float, origin_us: int) -> Grid:
        return cls(round(gop_seconds * US), origin_us)

    @property
    def first_cut(self) -> int:
        earliest = self.origin_us + self.gop_us // 2
        return -(-earliest // self.gop_us) * self.gop_us  # ceil to the grid

    def index(self, t_us: int) -> int:
        """Segment number (from this worker's start) of a frame at publisher time t_us."""
        if t_us < self.first_cut:
            return 0
        return 1 + (t_us - self.first_cut) // self.gop_us

    def starts_segment(self, prev_us: int | None, t_us: int) -> bool:
        """Whether the frame at t_us opens a segment, given the previous output frame's time."""
        return prev_us is None or self.index(t_us) > self.index(prev_us)


class Decimator:
    """Frame-rate cap: keeps frames at most `fps` per second of publisher time.

    A frame is kept when it is no earlier than a quarter interval before the next due slot, which
    tolerates the millisecond rounding of RTMP timestamps (66, 67, 67 ms at 15 fps) and halves a
    30 fps source to 15 fps evenly. After a gap it restarts from the frame instead of bursting.
    """

    def __init__(self, fps: float) -> None:
        self.interval = US / fps
        self._due: float | None = None

    def take(self, t_us: int) -> bool:
        due = self._due
        if due is not None and t_us < due - self.interval / 4:
            return False
        if due is None or t_us >= due + self.interval:
            self._due = t_us + self.interval
        else:
            self._due = due + self.interval
        return True


class WallClock:
    """Maps publisher time to wall-clock seconds (for EXT-X-PROGRAM-DATE-TIME).

    The offset is the smallest (arrival - publisher time) seen: the least-delayed packet is the
    best estimate of when the publisher captured it. Replayed GOP-cache packets arrive late, so
    they only ever raise the estimate until live packets bring it down.
    """

    def __init__(self) -> None:
        self._offset: float | None = None

    def note(self, t_us: int, arrival: float) -> None:
        offset = arrival - t_us / US
        if self._offset is None or offset < self._offset:
            self._offset = offset

    def wall(self, t_us: int, default: float) -> float:
        return default if self._offset is None else t_us / US + self._offset


@dataclass(frozen=True)
class Fit:
    """Where a decoded audio frame goes on the output sample timeline."""

    keep: bool
    silence: int = 0  # output samples of silence to insert first (a gap in the input)


class AudioClock:
    """Output audio timeline: sample counts at `rate` from the first kept frame's publisher time.

    Encoded AAC frames are stamped by counting samples rather than from input timestamps (which
    carry the publisher's jitter and the encoder's priming delay). Gaps in the input (packet loss,
    Opus DTX) are filled with silence and overlaps are dropped, so the count stays on the
    publisher's clock within `tolerance_us`.
    """

    MAX_FILL_US = 10 * US  # beyond this a timestamp jump is not a gap to fill

    def __init__(self, rate: int, anchor_us: int, tolerance_us: int = 40_000) -> None:
        self.rate = rate
        self.anchor_us = anchor_us
        self.tolerance_us = tolerance_us
        self.written = 0  # samples put on the timeline so far

    def expected_us(self) -> int:
        return self.anchor_us + self.written * US // self.rate

    def fit(self, t_us: int) -> Fit:
        drift = t_us - self.expected_us()
        if drift < -self.tolerance_us:
            return Fit(keep=False)
        if drift > self.tolerance_us:
            fill = min(drift, self.MAX_FILL_US) * self.rate // US
            return Fit(keep=True, silence=fill)
        return Fit(keep=True)

    def advance(self, samples: int) -> None:
        self.written += samples

    def time_of(self, sample: int) -> int:
        """Publisher time (us) of output sample number `sample`."""
        return self.anchor_us + sample * US // self.rate

    def ticks_of(self, sample: int) -> int:
        """Decode time in the track timescale (= rate) of output sample number `sample`."""
        return self.anchor_us * self.rate // US + sample


def to_ticks(t_us: int, timescale: int) -> int:
    return t_us * timescale // US
