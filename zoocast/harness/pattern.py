"""Synthetic sources: stamped test-pattern video frames and a 440 Hz tone, cheap enough for CI."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from numpy.typing import NDArray

from zoocast.harness import timecode

BAR_SECONDS = 2.0  # the bar crosses the frame once every 2 s, so motion is visible at any fps


class TestPattern:
    """A colour gradient with a moving white bar; every frame carries its timecode in the top band."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, width: int, height: int, fps: int) -> None:
        if width % 2 or height % 2 or width < 32 or height < 18:
            raise ValueError(
                f"test pattern needs even sizes of at least 32x18, not {width}x{height}"
            )
        self.width, self.height, self.fps = width, height, fps
        yy, xx = np.mgrid[0:height, 0:width]
        self._base_y = (48 + 140 * (xx + yy) // (width + height)).astype(np.uint8)
        cy, cx = np.mgrid[0 : height // 2, 0 : width // 2]
        u = (64 + 128 * cx // max(1, width // 2)).astype(np.uint8)
        v = (192 - 128 * cy // max(1, height // 2)).astype(np.uint8)
        # Neutral chroma under the code: luma is what is read, but a colour fringe there helps nobody.
        chroma_band = (timecode.band_height(height) + 1) // 2
        u[:chroma_band], v[:chroma_band] = 128, 128
        # yuv420p as PyAV's from_ndarray wants it: Y rows, then U and V packed row-major below.
        self._buf = np.empty((height * 3 // 2, width), dtype=np.uint8)
        chroma = self._buf[height:].reshape(-1)
        quarter = width * height // 4
        chroma[:quarter] = u.reshape(-1)
        chroma[quarter:] = v.reshape(-1)
        self._bar_width = max(2, width // 16)

    def frame(self, index: int, capture_us: int) -> av.VideoFrame:
        """Frame number `index` (pts in 1/fps units) stamped with `capture_us` and counter `index`."""
        y: NDArray[np.uint8] = self._buf[: self.height]
        np.copyto(y, self._base_y)
        span = self.width + self._bar_width
        x = int(index * span / (BAR_SECONDS * self.fps)) % span - self._bar_width
        y[:, max(0, x) : max(0, x + self._bar_width)] = timecode.WHITE
        timecode.stamp(y, capture_us, index)
        frame = av.VideoFrame.from_ndarray(self._buf, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, self.fps)
        return frame


class Tone:
    """A continuous sine as mono float-planar frames of the AAC frame size, pts in samples."""

    def __init__(self, sample_rate: int = 48_000, freq: float = 440.0, samples: int = 1024) -> None:
        self.sample_rate, self.freq, self.samples = sample_rate, freq, samples
        self.next_pts = 0

    def frame(self) -> av.AudioFrame:
        n = np.arange(self.next_pts, self.next_pts + self.samples)
        # 0.2 full scale: clearly audible, far from clipping after AAC's ringing.
        wave = (0.2 * np.sin(2 * np.pi * self.freq * n / self.sample_rate)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self.next_pts
        frame.time_base = Fraction(1, self.sample_rate)
        self.next_pts += self.samples
        return frame

    @property
    def next_time(self) -> float:
        """Media time (s) at which the next frame starts."""
        return self.next_pts / self.sample_rate
