"""Cutting encoded samples into segments (pure: samples with cut flags in, closed segments out).

A segment is closed when the first sample of the next one arrives: only then are the duration of
its last sample and its end time known. An unfinished segment is simply never closed, which is
what a worker does when it stops: it drops the GOP in progress.
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
class Closed:
    base_dts: int  # decode time of the first sample, in the track timescale
    samples: list[Sample]
    start: Mark
    end: Mark

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


class Segmenter:
    def __init__(self) -> None:
        self._open: _Open | None = None
        self._last_dts: int | None = None

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
        self._last_dts = dts
        seg.dts.append(dts)
        seg.pts.append(pts)
        seg.data.append(data)
        seg.sync.append(sync)
        return closed

    def _close(self, end_dts: int, end: Mark) -> Closed:
        seg = self._open
        assert seg is not None
        ends = [*seg.dts[1:], end_dts]
        samples = [
            Sample(d, e - s, k, p - s)
            for d, s, e, p, k in zip(seg.data, seg.dts, ends, seg.pts, seg.sync, strict=True)
        ]
        return Closed(seg.dts[0], samples, seg.start, end)
