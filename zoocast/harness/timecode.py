"""A capture time and frame counter drawn into a frame's luma as big black/white cells, and read back.

Layout: a band across the top of the frame, ROWS rows of COLS cells. The grid is defined in
fractions of the frame (row height H/18, column width W/32, square cells at 16:9), so any
rescale of the whole frame, with any rounding of the new size, maps cells onto cells. At 120 px
height a cell is still about 6.7 px, which survives x264 at low bitrates.

Each row starts and ends with two fixed sync cells (white/black, mirrored, alternating per row);
they give the reader its black and white levels and tell it whether a code is there at all. The
28 x 3 = 84 data cells carry, most significant bit first: the capture time in microseconds since
the Unix epoch (52 bits, good until 2112), a frame counter (16 bits, wraps) and a CRC-16 of both.
A cell whose level is too close to the threshold, a sync cell on the wrong side or a CRC mismatch
makes `read` return None: a measurement must rather lose a frame than take a wrong time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

ROWS = 3
COLS = 32
ROW_DIVISOR = 18  # row height = frame height / 18: the band covers the top sixth of the frame
TIME_BITS = 52
COUNTER_BITS = 16
CRC_BITS = 16
WHITE = 235  # limited-range video levels, so nothing downstream clips or expands them
BLACK = 16
_SYNC_COLS = (0, 1, COLS - 2, COLS - 1)
_DATA_COLS = tuple(c for c in range(COLS) if c not in _SYNC_COLS)
_PAYLOAD_BITS = TIME_BITS + COUNTER_BITS
assert len(_DATA_COLS) * ROWS == _PAYLOAD_BITS + CRC_BITS
# Each cell is averaged over its middle half only: edges blur under scaling and deblocking.
_INNER_MARGIN = 0.25
_MIN_CONTRAST = 64.0  # white minus black reference, in 8-bit luma levels
_AMBIGUOUS = 0.2  # a cell nearer the threshold than this fraction of the contrast is unreadable


@dataclass(frozen=True, slots=True)
class Timecode:
    capture_us: int
    counter: int


def band_height(height: int) -> int:
    """Pixel rows at the top of a frame of this height that `stamp` overwrites."""
    return int(_row_edges(height)[-1])


def stamp(luma: NDArray[np.uint8], capture_us: int, counter: int = 0) -> None:
    """Draw the code into the top band of `luma` (H x W, modified in place); counter wraps."""
    if not 0 <= capture_us < 1 << TIME_BITS:
        raise ValueError(f"capture time {capture_us} us does not fit {TIME_BITS} bits")
    h, w = luma.shape
    bits = _encode_bits(capture_us, counter % (1 << COUNTER_BITS))
    cells = np.where(_sync_pattern(), WHITE, BLACK).astype(np.uint8)
    cells[:, _DATA_COLS] = np.where(bits.reshape(ROWS, len(_DATA_COLS)), WHITE, BLACK)
    rows, cols = _row_edges(h), _col_edges(w)
    band = np.repeat(np.repeat(cells, np.diff(rows), axis=0), np.diff(cols), axis=1)
    luma[: rows[-1], :] = band


def read(luma: NDArray[np.uint8]) -> Timecode | None:
    """The code in the top band of `luma`, or None when it is absent or not read with confidence."""
    h, w = luma.shape
    if h < ROW_DIVISOR or w < COLS:
        return None
    levels = _cell_means(luma)
    sync_levels = levels[:, _SYNC_COLS]
    want = _sync_pattern()[:, _SYNC_COLS]
    white = float(sync_levels[want].mean())
    black = float(sync_levels[~want].mean())
    contrast = white - black
    if contrast < _MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    margin = _AMBIGUOUS * contrast
    if np.any(np.where(want, sync_levels < threshold + margin, sync_levels > threshold - margin)):
        return None
    data = levels[:, _DATA_COLS]
    if np.any(np.abs(data - threshold) < margin):
        return None
    bits = (data > threshold).reshape(-1)
    value = _bits_to_int(bits)
    payload, crc = value >> CRC_BITS, value & ((1 << CRC_BITS) - 1)
    if crc16(payload.to_bytes(9, "big")) != crc:
        return None
    return Timecode(capture_us=payload >> COUNTER_BITS, counter=payload & ((1 << COUNTER_BITS) - 1))


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode_bits(capture_us: int, counter: int) -> NDArray[np.bool_]:
    payload = (capture_us << COUNTER_BITS) | counter
    value = (payload << CRC_BITS) | crc16(payload.to_bytes(9, "big"))
    n = _PAYLOAD_BITS + CRC_BITS
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], dtype=bool)


def _bits_to_int(bits: NDArray[np.bool_]) -> int:
    value = 0
    for bit in bits.tolist():
        value = (value << 1) | int(bit)
    return value


@lru_cache(maxsize=8)
def _sync_pattern() -> NDArray[np.bool_]:
    """True where a cell is a white sync cell; data cells are False (unused by callers)."""
    pattern = np.zeros((ROWS, COLS), dtype=bool)
    for r in range(ROWS):
        left_white = r % 2 == 0
        pattern[r, 0], pattern[r, 1] = left_white, not left_white
        pattern[r, COLS - 2], pattern[r, COLS - 1] = not left_white, left_white
    pattern.setflags(write=False)
    return pattern


@lru_cache(maxsize=32)
def _row_edges(height: int) -> NDArray[np.intp]:
    return np.round(np.arange(ROWS + 1) * height / ROW_DIVISOR).astype(np.intp)


@lru_cache(maxsize=32)
def _col_edges(width: int) -> NDArray[np.intp]:
    return np.round(np.arange(COLS + 1) * width / COLS).astype(np.intp)


@lru_cache(maxsize=32)
def _inner(size: int, count: int, divisor: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """[lo, hi) pixel ranges of the middle of each cell along one axis, at least one pixel wide."""
    step = size / divisor
    starts = np.arange(count) * step
    lo = np.ceil(starts + _INNER_MARGIN * step).astype(np.intp)
    hi = np.floor(starts + (1 - _INNER_MARGIN) * step).astype(np.intp)
    hi = np.maximum(hi, lo + 1)
    return lo, np.minimum(hi, size)


def _cell_means(luma: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Mean level of each cell's middle: sum each row band's rows, then difference a cumulative
    sum along the columns, so the cost is a few passes over the sampled rows and no Python loop
    over cells."""
    h, w = luma.shape
    r_lo, r_hi = _inner(h, ROWS, ROW_DIVISOR)
    c_lo, c_hi = _inner(w, COLS, COLS)
    cumulative = np.zeros((ROWS, w + 1), dtype=np.int64)
    for r in range(ROWS):
        luma[r_lo[r] : r_hi[r]].sum(axis=0, dtype=np.int64, out=cumulative[r, 1:])
    np.cumsum(cumulative, axis=1, out=cumulative)
    sums = cumulative[:, c_hi] - cumulative[:, c_lo]
    area = (r_hi - r_lo)[:, None] * (c_hi - c_lo)[None, :]
    return np.asarray(sums / area, dtype=np.float64)
