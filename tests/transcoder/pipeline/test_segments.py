"""Cutting segments into LL-HLS parts (pure)."""

from __future__ import annotations

import pytest

from transcoder.pipeline.segments import Closed, Mark, Part, Segmenter


def _feed(seg: Segmenter, frames: int, step: int, gop: int) -> tuple[list[Part], list[Closed]]:
    parts: list[Part] = []
    closed: list[Closed] = []
    for i in range(frames):
        cut = Mark(i * step, 0.0) if i % gop == 0 else None
        done = seg.add(i * step, i * step, bytes([i % 256]), i % gop == 0, cut)
        parts += seg.take_parts()
        if done is not None:
            closed.append(done)
    return parts, closed


@pytest.mark.parametrize(
    ("step", "gop", "target", "per_part"),
    [
        (3000, 60, 45_000, [15, 15, 15, 15]),  # 30 fps video, 2 s segments, 0.5 s parts
        (1024, 94, 24_000, [23, 23, 23, 23, 2]),  # AAC at 48 kHz: 2.005 s segments
        (3000, 50, 45_000, [15, 15, 15, 5]),  # a segment that is not a multiple of the target
    ],
)
def test_parts_stay_within_target_and_make_up_the_segment(
    step: int, gop: int, target: int, per_part: list[int]
) -> None:
    seg = Segmenter(part_ticks=target)
    parts, closed = _feed(seg, gop * 3 + 1, step, gop)
    assert len(closed) == 3
    for segment in closed:
        assert [len(p.samples) for p in segment.parts] == per_part
        assert [p.index for p in segment.parts] == list(range(len(per_part)))
        assert all(p.ticks <= target for p in segment.parts)
        # A segment is exactly its parts, sample for sample.
        assert [s for p in segment.parts for s in p.samples] == segment.samples
        assert segment.parts[0].base_dts == segment.base_dts
        assert segment.parts[0].independent and not any(p.independent for p in segment.parts[1:])
    # Parts come out as they close, each before the segment it completes.
    assert parts[: 3 * len(per_part)] == [p for c in closed for p in c.parts]


def test_parts_are_handed_out_while_the_segment_grows() -> None:
    seg = Segmenter(part_ticks=45_000)
    got, closed = _feed(seg, 40, 3000, 60)  # 40 frames of an open 60-frame segment
    assert closed == []
    assert [len(p.samples) for p in got] == [15, 15]
    assert seg.take_parts() == []  # taken once


def test_without_a_target_there_are_no_parts() -> None:
    seg = Segmenter()
    parts, closed = _feed(seg, 121, 3000, 60)
    assert parts == [] and all(c.parts == [] for c in closed) and len(closed) == 2
