"""Cutting encoded samples into segments (pure: samples with cut flags in, closed segments out).

A segment is closed when the first sample of the next one arrives: only then are the duration of
its last sample and its end time known. An unfinished segment is simply never closed, which is
what a worker does when it stops: it drops the GOP in progress.

With a part target (LL-HLS), the open segment is also cut into parts as it grows. A part is
closed before the sample that would carry it past the target (judged by the sample's expected
end, one frame interval after its start), so parts never exceed the target with regular frame
intervals; the last part of a segment closes with the segment. A segment is exactly its parts
in order: the consumer takes the parts (`take_parts`) before the segment they complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transcoder.pipeline.fmp4 import Sample


@dataclass(frozen=True)
class Mark:
    """A segment boundary: publisher time and the wall-clock estimate of that instant."""

    t_us: int
    wall: float


@dataclass(frozen=True)
class Part:
    index: int  # within its segment, from 0
    base_dts: int
    samples: list[Sample]

    @property
    def independent(self) -> bool:
        return self.samples[0].sync

    @property
    def ticks(self) -> int:
        return sum(s.duration for s in self.samples)


@dataclass(frozen=True)
class Closed:
    base_dts: int  # decode time of the first sample, in the track timescale
    samples: list[Sample]
    start: Mark
    end: Mark
    parts: list[Part] = field(default_factory=list)  # empty without a part target

    @property
    def duration(self) -> float:
        return (self.end.t_us - self.start.t_us) / 1_000_000


@dataclass
class _Open:
    start: Mark
    dts: list[int] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    sync: list[bool] = field(default_factory=list)
    part_from: int = 0  # index of the first sample of the part in progress
    parts: list[Part] = field(default_factory=list)


class Segmenter:
    def __init__(self, part_ticks: int = 0) -> None:
        """`part_ticks`: the part target in the track timescale; 0 cuts no parts."""
        self.part_ticks = part_ticks
        self._open: _Open | None = None
        self._last_dts: int | None = None
        self._done: list[Part] = []

    def take_parts(self) -> list[Part]:
        """Parts closed since the last call, oldest first."""
        done, self._done = self._done, []
        return done

    def add(
        self, dts: int, pts: int, data: bytes, sync: bool, cut: Mark | None = None
    ) -> Closed | None:
        """Add one sample; `cut` (its boundary mark) when it opens a new segment.

        Returns the segment this sample closed, if any. Samples before the first cut are dropped:
        a segment must begin at a boundary (a forced keyframe).
        """
        if self._last_dts is not None and dts <= self._last_dts:
            raise ValueError(f"decode times must increase: {dts} after {self._last_dts}")
        closed = None
        if cut is not None:
            if self._open is not None and self._open.dts:
                closed = self._close(dts, cut)
            self._open = _Open(cut)
        if self._open is None:
            return None
        seg = self._open
        if self.part_ticks and self._last_dts is not None and len(seg.dts) > seg.part_from:
            expected_end = dts + (dts - self._last_dts)
            if expected_end - seg.dts[seg.part_from] > self.part_ticks:
                self._close_part(seg, dts)
        self._last_dts = dts
        seg.dts.append(dts)
        seg.pts.append(pts)
        seg.data.append(data)
        seg.sync.append(sync)
        return closed

    def _close(self, end_dts: int, end: Mark) -> Closed:
        seg = self._open
        assert seg is not None
        if self.part_ticks:
            self._close_part(seg, end_dts)
        samples = _samples(seg, 0, len(seg.dts), end_dts)
        return Closed(seg.dts[0], samples, seg.start, end, list(seg.parts))

    def _close_part(self, seg: _Open, end_dts: int) -> None:
        first, last = seg.part_from, len(seg.dts)
        part = Part(len(seg.parts), seg.dts[first], _samples(seg, first, last, end_dts))
        seg.parts.append(part)
        seg.part_from = last
        self._done.append(part)


def _samples(seg: _Open, first: int, last: int, end_dts: int) -> list[Sample]:
    """Samples `first:last` of `seg`; each lasts until the next one's decode time."""
    dts = seg.dts[first:last]
    ends = [*dts[1:], end_dts]
    return [
        Sample(seg.data[i], e - d, seg.sync[i], seg.pts[i] - d)
        for i, d, e in zip(range(first, last), dts, ends, strict=True)
    ]
