"""Test media: stamped frames with busy content, and real libx264 round trips through PyAV."""

from __future__ import annotations

import io
from collections.abc import Sequence

import av
import numpy as np

from zoocast.harness import timecode
from zoocast.harness.frames import luma


def stamped_frames(
    width: int, height: int, times: Sequence[int], rng: np.random.Generator
) -> list[av.VideoFrame]:
    """yuv420p frames with a moving gradient plus noise (expensive to encode), each stamped."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for i, capture_us in enumerate(times):
        y = ((xx * 200 // width + yy * 50 // height + i * 5) % 200).astype(np.uint8)
        y += rng.integers(0, 50, size=(height, width), dtype=np.uint8)
        timecode.stamp(y, capture_us, i)
        buf = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
        buf[:height] = y
        frames.append(av.VideoFrame.from_ndarray(buf, format="yuv420p"))
    return frames


def x264_roundtrip(
    frames: Sequence[av.VideoFrame], width: int, height: int, kbps: int, preset: str, fps: int = 30
) -> list[av.VideoFrame]:
    """Encode (scaling to width x height first) with libx264 and decode again."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = kbps * 1000
        stream.codec_context.options = {"preset": preset, "tune": "zerolatency"}
        for i, frame in enumerate(frames):
            scaled = frame.reformat(width=width, height=height)
            scaled.pts = i
            # Decoded frames keep pict_type=I, which x264 obeys (every frame an IDR): reset it.
            scaled.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(scaled))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf, "r") as inp:
        return list(inp.decode(video=0))


def read_all(frames: Sequence[av.VideoFrame]) -> list[timecode.Timecode | None]:
    return [timecode.read(luma(f)) for f in frames]


def fmp4_segments(
    frames: Sequence[av.VideoFrame], width: int, height: int, fps: int, gop: int
) -> tuple[bytes, list[bytes]]:
    """Encode to fragmented MP4, one fragment per GOP: (init segment, media segments)."""
    buf = io.BytesIO()
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    with av.open(buf, "w", format="mp4", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        for i, frame in enumerate(frames):
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    init, segments = b"", []
    for kind, box in _boxes(buf.getvalue()):
        if kind in (b"ftyp", b"moov"):
            init += box
        elif kind == b"moof":
            segments.append(box)
        elif kind == b"mdat":
            segments[-1] += box
    return init, segments


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    out, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        out.append((data[offset + 4 : offset + 8], data[offset : offset + size]))
        offset += size
    return out
