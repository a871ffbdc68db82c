"""Gap, stall and latency analysis on synthetic viewings (no media)."""

from __future__ import annotations

import pytest

from zoocast.harness.analysis import (
    FrameRecord,
    discontinuities,
    gaps,
    latency,
    msn_monotonic,
)

FPS = 30
SEGMENT = 1.0  # seconds of content per segment
T0 = 1_800_000_000.0


def viewing(
    captures: list[float], delay: float = 0.5, stall_after: int | None = None
) -> list[FrameRecord]:
    """Frames grouped into 1 s segments, each arriving `delay` after its last frame's capture."""
    records: list[FrameRecord] = []
    extra = 0.0
    for i, capture in enumerate(captures):
        msn = int((capture - T0) // SEGMENT)
        if stall_after is not None and msn > stall_after:
            extra = 2.0
        arrival = T0 + (msn + 1) * SEGMENT + delay + extra
        first = i == 0 or records[-1].msn != msn
        records.append(FrameRecord(arrival, capture, i % 65536, msn, first and msn == 5))
    return records


def frames(start: float, end: float) -> list[float]:
    n = round((end - start) * FPS)
    return [start + k / FPS for k in range(n)]


def test_steady_stream_has_no_gap() -> None:
    g = gaps(viewing(frames(T0, T0 + 8)))
    assert g.frame_interval == pytest.approx(1 / FPS)
    assert g.content_gap == pytest.approx(0, abs=1e-6)
    assert g.stall == pytest.approx(0, abs=1e-6)
    assert (g.rewind, g.repeated, g.unreadable) == (0.0, 0, 0)


def test_missing_content_is_the_gap() -> None:
    # 0.8 s of content never reaches the viewer: the gap reads 0.8 s, not 0.8 + 1/fps.
    captures = frames(T0, T0 + 4) + frames(T0 + 4.8, T0 + 8)
    g = gaps(viewing(captures))
    assert g.content_gap == pytest.approx(0.8, abs=1e-6)
    assert g.content_jump == pytest.approx(0.8 + 1 / FPS, abs=1e-6)
    assert g.content_gap_at == pytest.approx(T0 + 4 - 1 / FPS)


def test_replayed_content_counts_as_repeats_not_as_gap() -> None:
    # A new transcoder starts from the GOP cache: 1 s already seen comes again, then new content.
    captures = frames(T0, T0 + 5) + frames(T0 + 4, T0 + 8)
    g = gaps(viewing(captures))
    assert g.content_gap == pytest.approx(0, abs=1e-6)
    assert g.rewind == pytest.approx(1 - 1 / FPS)
    assert g.repeated == FPS


def test_stall_in_arrival() -> None:
    g = gaps(viewing(frames(T0, T0 + 8), stall_after=3))
    assert g.arrival_jump == pytest.approx(SEGMENT + 2.0)
    assert g.stall == pytest.approx(2.0)
    assert g.stall_at == pytest.approx(T0 + 4 + 0.5)


def test_unreadable_frames_are_skipped_and_counted() -> None:
    records = viewing(frames(T0, T0 + 2))
    records[10] = FrameRecord(records[10].arrival, None, None, records[10].msn, False)
    g = gaps(records)
    assert g.unreadable == 1
    assert g.content_gap == pytest.approx(1 / FPS)


def test_latency_percentiles() -> None:
    lat = latency(viewing(frames(T0, T0 + 10), delay=0.5))
    # Within a 1 s segment latency runs from 1.5 s (first frame) down to 0.5 s + 1/fps (last).
    assert lat.count == 10 * FPS
    assert lat.min == pytest.approx(0.5 + 1 / FPS)
    assert lat.max == pytest.approx(1.5)
    assert lat.min < lat.p50 < lat.p90 < lat.p99 <= lat.max
    assert lat.p50 == pytest.approx(1.0, abs=0.05)


def test_facts() -> None:
    records = viewing(frames(T0, T0 + 8))
    assert msn_monotonic(records)
    assert discontinuities(records) == 1
    assert not msn_monotonic([records[40], records[0]])


def test_too_little_to_judge() -> None:
    with pytest.raises(ValueError):
        gaps(viewing([T0]))
    with pytest.raises(ValueError):
        latency([FrameRecord(T0, None, None, 0, False)])
