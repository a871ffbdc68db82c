"""The pass-through hook against the real aiortc: marked receivers yield encoded frames, others decode.

If an aiortc upgrade renames `get_decoder` or the receiver's decoder thread, these fail.
"""

from __future__ import annotations

import asyncio

import av
from aiortc import RTCPeerConnection

from edge.ingest.whip import passthrough
from edge.ingest.whip.packets import h264_keyframe, nal_types, vp8_keyframe
from tests.edge.whip.rtc import connect, sender
from zoocast.harness.rtc_tracks import EncodedPatternTrack, PatternTrack, ToneTrack

W, H, FPS = 160, 90, 15


async def _first(pc: RTCPeerConnection, kind: str, count: int = 3) -> list[object]:
    track = next(t.receiver.track for t in pc.getTransceivers() if t.kind == kind)
    return [await asyncio.wait_for(track.recv(), 10) for _ in range(count)]


async def _close(*pcs: RTCPeerConnection) -> None:
    await asyncio.gather(*(pc.close() for pc in pcs))


async def test_marked_receivers_get_encoded_frames_and_others_still_decode() -> None:
    # One marked connection (H.264 + Opus, as OBS sends) and one ordinary one in the same process.
    pub_a = sender([EncodedPatternTrack(W, H, FPS, 1.0, 200_000), ToneTrack()], "H264")
    sub_a = await connect(pub_a, lambda rs: [passthrough.mark(r) for r in rs])
    pub_b = sender([PatternTrack(W, H, FPS)], "H264")
    sub_b = await connect(pub_b)
    try:
        video = await _first(sub_a, "video")
        audio = await _first(sub_a, "audio")
        decoded = await _first(sub_b, "video")
    finally:
        await _close(pub_a, sub_a, pub_b, sub_b)
    assert all(isinstance(p, av.Packet) for p in video + audio)
    first = bytes(video[0])  # type: ignore[call-overload]
    # A whole access unit in Annex-B, starting with SPS/PPS and an IDR.
    assert first.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
    assert {7, 8, 5} <= set(nal_types(first)) and h264_keyframe(first)
    assert not h264_keyframe(bytes(video[1]))  # type: ignore[call-overload]
    assert video[0].time_base.denominator == 90_000  # type: ignore[attr-defined]
    assert audio[0].time_base.denominator == 48_000  # type: ignore[attr-defined]
    pts = [p.pts for p in video]  # type: ignore[attr-defined]
    assert pts == sorted(pts) and pts[0] == 0
    assert all(isinstance(f, av.VideoFrame) for f in decoded)
    assert all(passthrough.is_marked(r) for r in (t.receiver for t in sub_a.getTransceivers()))


async def test_vp8_passes_through_with_its_keyframe_bit() -> None:
    pub = sender([PatternTrack(W, H, FPS)], "VP8")
    sub = await connect(pub, lambda rs: [passthrough.mark(r) for r in rs])
    try:
        video = await _first(sub, "video")
    finally:
        await _close(pub, sub)
    frames = [bytes(p) for p in video]  # type: ignore[call-overload]
    assert vp8_keyframe(frames[0]) and not vp8_keyframe(frames[1])
