"""What a viewer saw, judged: per-frame records in, content gaps, stalls, latency and sequence facts out.

All times are wall-clock seconds (Unix epoch), so capture (stamped by the publisher) and arrival
(observed by the viewer) on the same machine can be subtracted directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass(frozen=True)
class FrameRecord:
    arrival: float  # when the segment carrying the frame finished downloading
    capture: float | None  # the publisher's stamp; None when the code could not be read
    counter: int | None  # the publisher's 16-bit frame counter
    msn: int  # media sequence number of the segment
    discontinuity: bool  # first frame of a segment after an EXT-X-DISCONTINUITY
    pts: float | None = None  # presentation time within the rendition, seconds


@dataclass(frozen=True)
class Gaps:
    # Content: the largest step forward in capture time, measured from the latest content seen
    # so far (so frames replayed after a failover do not hide what was skipped).
    content_jump: float
    content_gap: float  # content_jump minus the usual frame interval: content the viewer never saw
    content_gap_at: float  # capture time of the last frame before that gap
    frame_interval: float  # median step between consecutive new frames
    # Arrival: the longest time with no new frames arriving.
    arrival_jump: float
    stall: float  # arrival_jump minus the usual interval between arrivals (a segment's time)
    stall_at: float  # arrival time of the last frame before the stall
    rewind: float  # largest step backwards in capture time (replayed content), 0 if none
    repeated: int  # frames not newer than content already seen
    unreadable: int  # frames whose timecode did not read


@dataclass(frozen=True)
class Latency:
    """Glass-to-glass latency (arrival - capture) over readable frames, in seconds."""

    count: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float


def gaps(records: Sequence[FrameRecord]) -> Gaps:
    """Content gap and arrival stall of a viewing; needs at least two readable frames."""
    readable = [r for r in records if r.capture is not None]
    if len(readable) < 2:
        raise ValueError(f"need two readable frames, got {len(readable)} of {len(records)}")
    steps: list[float] = []
    jump, jump_at = 0.0, 0.0
    rewind, repeated = 0.0, 0
    latest = _capture(readable[0])
    previous = latest
    for record in readable[1:]:
        capture = _capture(record)
        rewind = max(rewind, previous - capture)
        previous = capture
        if capture <= latest:
            repeated += 1
            continue
        step = capture - latest
        steps.append(step)
        if step > jump:
            jump, jump_at = step, latest
        latest = capture
    interval = float(np.median(steps)) if steps else 0.0
    arrivals = np.array([r.arrival for r in records])
    arrival_steps = np.diff(arrivals)
    worst = int(np.argmax(arrival_steps))
    moving = arrival_steps[arrival_steps > 0]
    usual = float(np.median(moving)) if moving.size else 0.0
    return Gaps(
        content_jump=jump,
        content_gap=max(0.0, jump - interval),
        content_gap_at=jump_at,
        frame_interval=interval,
        arrival_jump=float(arrival_steps[worst]),
        stall=max(0.0, float(arrival_steps[worst]) - usual),
        stall_at=float(arrivals[worst]),
        rewind=rewind,
        repeated=repeated,
        unreadable=len(records) - len(readable),
    )


def latency(records: Sequence[FrameRecord]) -> Latency:
    """Percentiles of arrival - capture; needs at least one readable frame."""
    lags = np.array([r.arrival - r.capture for r in records if r.capture is not None])
    if lags.size == 0:
        raise ValueError(f"no readable frame among {len(records)}")
    p50, p90, p99 = (float(v) for v in np.percentile(lags, [50, 90, 99]))
    return Latency(lags.size, float(lags.min()), p50, p90, p99, float(lags.max()))


def msn_monotonic(records: Sequence[FrameRecord]) -> bool:
    """Media sequence numbers never go backwards along the viewing."""
    return all(a.msn <= b.msn for a, b in pairwise(records))


def discontinuities(records: Sequence[FrameRecord]) -> int:
    """How many discontinuities the viewer went through."""
    return sum(r.discontinuity for r in records)


def _capture(record: FrameRecord) -> float:
    assert record.capture is not None
    return record.capture
