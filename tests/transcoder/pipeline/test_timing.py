"""Keyframe-boundary math, frame-rate capping and clocks: pure functions of publisher time."""

from __future__ import annotations

from transcoder.pipeline.timing import AudioClock, Decimator, Grid, WallClock

GOP = 2_000_000


def cuts(grid: Grid, times: list[int]) -> list[int]:
    out, prev = [], None
    for t in times:
        if grid.starts_segment(prev, t):
            out.append(t)
        prev = t
    return out


def frames(fps: float, seconds: float, start_us: int = 0) -> list[int]:
    return [start_us + round(i * 1e6 / fps) for i in range(int(seconds * fps))]


def test_boundaries_are_multiples_of_the_gop_on_the_publisher_clock() -> None:
    grid = Grid.of(2.0, 0)
    assert cuts(grid, frames(15, 7)) == [0, GOP, 2 * GOP, 3 * GOP]


def test_a_successor_starting_on_a_boundary_cuts_where_the_predecessor_would_have() -> None:
    whole = cuts(Grid.of(2.0, 0), frames(15, 12))
    resumed = cuts(Grid.of(2.0, 4_000_000), [t for t in frames(15, 12) if t >= 4_000_000])
    assert resumed == [t for t in whole if t >= 4_000_000]


def test_a_start_close_to_a_boundary_does_not_make_a_runt_segment() -> None:
    grid = Grid.of(2.0, 1_900_000)  # 0.1 s before a boundary: that boundary is skipped
    assert grid.first_cut == 4_000_000
    assert cuts(grid, [t for t in frames(15, 9) if t >= 1_900_000])[:3] == [
        1_933_333,
        4_000_000,
        6_000_000,
    ]
    assert Grid.of(2.0, 900_000).first_cut == 2_000_000  # 1.1 s is long enough


def test_ms_rounded_timestamps_still_cut_on_the_boundary_frame() -> None:
    ms = [round(t / 1000) * 1000 for t in frames(15, 5)]  # RTMP: 0, 67, 133, ...
    assert cuts(Grid.of(2.0, 0), ms) == [0, 2_000_000, 4_000_000]


def test_fractional_gop_and_fps() -> None:
    grid = Grid.of(1.5, 0)
    assert cuts(grid, frames(30000 / 1001, 4)) == [0, 1_501_500, 3_003_000]


def kept(fps: float, times: list[int]) -> list[int]:
    d = Decimator(fps)
    return [t for t in times if d.take(t)]


def test_decimator_halves_30_to_15_evenly() -> None:
    src = frames(30, 2)
    assert kept(15, src) == src[::2]


def test_decimator_keeps_every_frame_at_or_below_the_cap_despite_jitter() -> None:
    src = [t + (1000 if i % 2 else -1000) for i, t in enumerate(frames(15, 2))]
    src[0] = 0
    assert kept(15, src) == src
    assert kept(30, frames(10, 2)) == frames(10, 2)


def test_decimator_25_to_15_keeps_15_per_second() -> None:
    assert len(kept(15, frames(25, 4))) == 60


def test_decimator_restarts_after_a_gap_instead_of_bursting() -> None:
    src = [*frames(15, 1), *frames(15, 1, start_us=5_000_000)]
    assert kept(15, src) == src


def test_wall_clock_takes_the_least_delayed_packet() -> None:
    clock = WallClock()
    assert clock.wall(0, default=42.0) == 42.0
    clock.note(1_000_000, arrival=1000.9)  # a replayed packet, 0.9 s late
    clock.note(2_000_000, arrival=1001.05)  # a live one, 50 ms late
    clock.note(3_000_000, arrival=1002.2)
    assert abs(clock.wall(0, default=0.0) - 999.05) < 1e-9


def test_audio_clock_fills_gaps_and_drops_overlaps() -> None:
    clock = AudioClock(48_000, anchor_us=1_000_000)
    assert clock.fit(1_000_000).keep and clock.fit(1_000_000).silence == 0
    clock.advance(48_000)  # one second written
    assert clock.expected_us() == 2_000_000
    assert clock.fit(2_010_000).silence == 0  # jitter within tolerance
    gap = clock.fit(2_500_000)
    assert gap.keep and gap.silence == 24_000
    assert not clock.fit(1_900_000).keep
    assert clock.time_of(1024) == 1_000_000 + 21_333
    assert clock.ticks_of(0) == 48_000
