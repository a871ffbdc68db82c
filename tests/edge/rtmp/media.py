"""Real H.264 and AAC codec headers made with PyAV (libx264, FFmpeg's AAC), for the pure tests."""

from __future__ import annotations

from fractions import Fraction

import av


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte string (3- or 4-byte start codes)."""
    parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p for p in parts if p]


def avcc(sps: bytes, pps: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord with one SPS and one PPS, 4-byte NAL lengths."""
    head = bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
    return head + len(sps).to_bytes(2, "big") + sps + b"\x01" + len(pps).to_bytes(2, "big") + pps


def h264_headers(
    width: int, height: int, pix_fmt: str = "yuv420p", options: dict[str, str] | None = None
) -> tuple[bytes, bytes]:
    """(SPS, PPS) as libx264 writes them for this picture."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = Fraction(1, 15)
    ctx.options = {"preset": "ultrafast", **(options or {})}
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.open()
    nals = split_annexb(bytes(ctx.extradata or b""))
    sps = next(n for n in nals if n[0] & 0x1F == 7)
    pps = next(n for n in nals if n[0] & 0x1F == 8)
    return sps, pps


def aac_asc(sample_rate: int, layout: str) -> bytes:
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = sample_rate, layout, "fltp"
    ctx.open()
    return bytes(ctx.extradata or b"")
