"""Decoded PyAV video frames in, their luma plane as a numpy array out (no copy when possible)."""

from __future__ import annotations

import av
import numpy as np
from numpy.typing import NDArray

# Formats whose plane 0 is 8-bit luma, one byte per pixel: read it in place.
_PLANAR_Y8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"}


def luma(frame: av.VideoFrame) -> NDArray[np.uint8]:
    """The Y plane (height x width, uint8); a view of the frame's memory for common formats."""
    if frame.format.name not in _PLANAR_Y8:
        frame = frame.reformat(format="gray")
    plane = frame.planes[0]
    # Rows are padded to line_size; the view drops the padding without copying.
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return rows[: plane.height * plane.line_size].reshape(plane.height, plane.line_size)[
        :, : plane.width
    ]
