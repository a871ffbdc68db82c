"""Timecode round trips: raw, across sizes, and through a real x264 encode at low bitrate + 120p."""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness.media import read_all, stamped_frames, x264_roundtrip
from zoocast.harness import timecode

NOW_US = 1_800_000_000_000_000  # 2027: realistic magnitude, and the top bits are set


def random_times(rng: np.random.Generator, n: int) -> list[int]:
    times = rng.integers(0, 1 << timecode.TIME_BITS, size=n).tolist()
    return [0, (1 << timecode.TIME_BITS) - 1, NOW_US, *times]


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (320, 180), (212, 120), (640, 480)])
def test_round_trip_raw(width: int, height: int) -> None:
    rng = np.random.default_rng(width)
    for i, t in enumerate(random_times(rng, 40)):
        y = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
        timecode.stamp(y, t, i * 977)
        assert timecode.read(y) == timecode.Timecode(t, (i * 977) % 65536)


def test_stamp_touches_only_the_band() -> None:
    y = np.full((180, 320), 77, dtype=np.uint8)
    timecode.stamp(y, NOW_US, 5)
    band = timecode.band_height(180)
    assert band == 30
    assert (y[band:] == 77).all()
    assert set(np.unique(y[:band])) == {timecode.BLACK, timecode.WHITE}


@pytest.mark.parametrize(("width", "height", "src_kbps"), [(1280, 720, 600), (320, 180, 150)])
def test_survives_x264_and_downscale_to_120p(width: int, height: int, src_kbps: int) -> None:
    # The publisher's encode, then the smallest rung of the tiny ladder (212x120, ultrafast) at
    # an even lower bitrate than the ladder's 150 kbit/s, on noisy content that starves the band.
    rng = np.random.default_rng(height)
    times = (NOW_US + np.cumsum(rng.integers(20_000, 50_000, size=30))).tolist()
    source = stamped_frames(width, height, times, rng)
    published = x264_roundtrip(source, width, height, src_kbps, "veryfast")
    viewed = x264_roundtrip(published, 212, 120, 100, "ultrafast")
    assert [c.capture_us if c else None for c in read_all(viewed)] == times
    assert [c.counter if c else None for c in read_all(viewed)] == list(range(len(times)))


def test_misreads_return_none() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 256, size=(180, 320), dtype=np.uint8)
    timecode.stamp(y, NOW_US, 1)
    row_h, col_w = 180 // 18, 320 // 32

    def cell(r: int, c: int) -> tuple[slice, slice]:
        return slice(r * row_h, (r + 1) * row_h), slice(c * col_w, (c + 1) * col_w)

    flipped = y.copy()
    flipped[cell(1, 10)] = 255 - flipped[cell(1, 10)]  # one data bit: the CRC catches it
    assert timecode.read(flipped) is None
    grey = y.copy()
    grey[cell(2, 5)] = 125  # a cell half way between black and white: refused, not guessed
    assert timecode.read(grey) is None
    no_sync = y.copy()
    no_sync[cell(0, 0)] = timecode.BLACK
    assert timecode.read(no_sync) is None
    assert timecode.read(np.zeros((180, 320), dtype=np.uint8)) is None
    assert timecode.read(np.full((180, 320), 200, dtype=np.uint8)) is None
    assert timecode.read(np.zeros((10, 20), dtype=np.uint8)) is None


def test_random_frames_never_read() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        y = rng.integers(0, 256, size=(120, 212), dtype=np.uint8)
        assert timecode.read(y) is None


def test_rejects_times_out_of_range() -> None:
    y = np.zeros((120, 212), dtype=np.uint8)
    with pytest.raises(ValueError):
        timecode.stamp(y, 1 << timecode.TIME_BITS)
    with pytest.raises(ValueError):
        timecode.stamp(y, -1)
