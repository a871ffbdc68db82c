"""WebRTC frames to media-link packets: keyframes from the bitstream, clocks, SPS/PPS before IDRs."""

from __future__ import annotations

from edge.ingest.whip.packets import (
    AUDIO_TRACK,
    VIDEO_HOLD_US,
    VIDEO_TRACK,
    TrackClock,
    TrackIn,
    nal_types,
)

SC = b"\x00\x00\x00\x01"
SPS, PPS = SC + b"\x67\x42\xe0\x1f\xaa", b"\x00\x00\x01\x68\xce\x3c\x80"
IDR, SLICE = SC + b"\x65\x88\x84", SC + b"\x41\x9a\x02"


def test_nal_types_split_three_and_four_byte_start_codes() -> None:
    assert nal_types(SPS + PPS + IDR) == [7, 8, 5]
    assert nal_types(SLICE) == [1]


def test_h264_waits_for_an_idr_and_repeats_headers_before_later_idrs() -> None:
    t = TrackIn(VIDEO_TRACK, "video", "h264")
    assert t.config().bitstream == "annexb" and t.config().extradata == b""
    assert t.packet(SLICE, 0, 0) is None  # nothing decodes before the first keyframe
    first = t.packet(SPS + PPS + IDR, 3000, 100_000)
    assert first is not None and first.keyframe and first.pts_us == 100_000 - VIDEO_HOLD_US
    p = t.packet(SLICE, 6000, 150_000)
    assert p is not None and not p.keyframe and p.pts_us == first.pts_us + 33_333
    bare = t.packet(IDR, 9000, 0)
    assert bare is not None and bare.keyframe and nal_types(bare.data) == [7, 8, 5]


def test_vp8_keyframe_bit_and_opus_config() -> None:
    t = TrackIn(VIDEO_TRACK, "video", "vp8")
    key = t.packet(b"\x50\x01\x00\x9d\x01\x2a", 0, 0)
    inter = t.packet(b"\x31\x02\x00", 3000, 0)
    assert key is not None and key.keyframe and inter is not None and not inter.keyframe
    cfg = TrackIn(AUDIO_TRACK, "audio", "opus").config()
    assert (cfg.codec, cfg.sample_rate, cfg.channels) == ("opus", 48_000, 2)


def test_clock_starts_at_arrival_and_never_goes_back() -> None:
    c = TrackClock(48_000, hold_us=80_000)
    assert c.stamp(0, 100_000) == 20_000  # arrival less what the jitter buffer held it back
    assert TrackClock(48_000, hold_us=80_000).stamp(0, 5_000) == 0
    assert c.stamp(960, 999_999) == 40_000  # later frames follow the RTP clock, not arrival
    assert c.stamp(0, 0) == 40_001  # a timestamp stepping back is clamped
