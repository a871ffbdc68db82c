"""FLV tag bodies to CodecConfig / MediaPacket, with codec headers from real encoders."""

from __future__ import annotations

import pytest

from cluster.errors import BadRequest, UnsupportedMedia
from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.ingest.rtmp import flv
from edge.ingest.rtmp.aac import parse_asc
from edge.ingest.rtmp.avc import avcc_size, sps_size
from tests.edge.rtmp.client import AVCC
from tests.edge.rtmp.media import aac_asc, avcc, h264_headers


def video_tag(frame_type: int, kind: int, cts: int, payload: bytes, codec: int = 7) -> bytes:
    return bytes([frame_type << 4 | codec, kind]) + cts.to_bytes(3, "big", signed=True) + payload


def audio_tag(kind: int, payload: bytes, fmt: int = 10) -> bytes:
    return bytes([fmt << 4 | 0x0F, kind]) + payload


@pytest.mark.parametrize(
    ("width", "height", "pix_fmt", "options"),
    [
        (320, 180, "yuv420p", {}),  # Constrained Baseline, cropped from 192 lines
        (1280, 720, "yuv420p", {"preset": "medium"}),  # High
        (176, 144, "yuv422p", {}),  # High 4:2:2
        (321, 241, "yuv444p", {}),  # High 4:4:4, odd sizes
        (320, 180, "yuv420p", {"preset": "medium", "x264-params": "interlaced=1:cqm=jvt"}),
    ],
)
def test_sps_picture_size(width: int, height: int, pix_fmt: str, options: dict[str, str]) -> None:
    sps, pps = h264_headers(width, height, pix_fmt, options)
    assert sps_size(sps) == (width, height)
    assert avcc_size(avcc(sps, pps)) == (width, height)


def test_avc_sequence_header() -> None:
    cfg = flv.video(video_tag(1, 0, 0, AVCC), 0)
    assert cfg == CodecConfig(
        track=0,
        kind="video",
        codec="h264",
        extradata=AVCC,
        bitstream="avcc",
        width=320,
        height=180,
    )


def test_an_unreadable_sps_gives_size_zero_not_an_error() -> None:
    broken = AVCC[:12]
    cfg = flv.video(video_tag(1, 0, 0, broken), 0)
    assert isinstance(cfg, CodecConfig) and (cfg.width, cfg.height) == (0, 0)


def test_a_sequence_header_that_is_not_avcc_is_refused() -> None:
    with pytest.raises(BadRequest, match="avcC"):
        flv.video(video_tag(1, 0, 0, b"\x00\x00\x00\x01\x67"), 0)


@pytest.mark.parametrize(
    ("frame_type", "cts", "key"), [(1, 0, True), (2, 66, False), (2, -33, False)]
)
def test_avc_nal_units(frame_type: int, cts: int, key: bool) -> None:
    nalus = b"\x00\x00\x00\x02\x65\x88"
    pkt = flv.video(video_tag(frame_type, 1, cts, nalus), 1000)
    assert pkt == MediaPacket(0, (1000 + cts) * 1000, 1_000_000, nalus, keyframe=key)


@pytest.mark.parametrize(
    "body",
    [b"", video_tag(1, 2, 0, b""), video_tag(1, 1, 0, b""), bytes([0x57, 0x00])],
    ids=["empty", "end-of-sequence", "no-nal-units", "command-frame"],
)
def test_video_tags_without_a_picture(body: bytes) -> None:
    assert flv.video(body, 0) is None


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (video_tag(1, 1, 0, b"x", codec=2), UnsupportedMedia, "Sorenson H.263; only H.264"),
        (video_tag(1, 1, 0, b"x", codec=12), UnsupportedMedia, "id 12"),
        (b"\x90hvc1", UnsupportedMedia, "enhanced-RTMP video"),
        (b"\x17\x01\x00", BadRequest, "AVC video tag of 3 bytes"),
        (video_tag(1, 7, 0, b"x"), BadRequest, "AVCPacketType 7"),
    ],
)
def test_video_errors(body: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        flv.video(body, 0)


@pytest.mark.parametrize(
    ("rate", "layout", "channels"), [(44100, "stereo", 2), (48000, "mono", 1), (22050, "5.1", 6)]
)
def test_aac_sequence_header_from_ffmpegs_encoder(rate: int, layout: str, channels: int) -> None:
    asc = aac_asc(rate, layout)
    assert flv.audio(audio_tag(0, asc), 0) == CodecConfig(
        1, "audio", "aac", asc, sample_rate=rate, channels=channels
    )


def bits(*fields: tuple[int, int]) -> bytes:
    """Pack (value, width) fields MSB first, zero-padded to whole bytes."""
    value, width = 0, 0
    for v, n in fields:
        value, width = value << n | v, width + n
    pad = -width % 8
    return (value << pad).to_bytes((width + pad) // 8, "big")


@pytest.mark.parametrize(
    ("asc", "expected"),
    [
        (bytes([0x12, 0x10]), (44100, 2)),
        (bytes([0x11, 0x90]), (48000, 2)),
        (bits((2, 5), (15, 4), (48000, 24), (2, 4)), (48000, 2)),  # explicit rate
        (bits((5, 5), (7, 4), (2, 4), (4, 4), (2, 5)), (44100, 2)),  # HE-AAC: SBR doubles 22.05k
        (bits((2, 5), (5, 4), (7, 4)), (32000, 8)),  # 7.1
        (bits((31, 5), (10, 6), (3, 4), (1, 4)), (48000, 1)),  # escaped object type (42)
    ],
)
def test_audio_specific_config(asc: bytes, expected: tuple[int, int]) -> None:
    assert parse_asc(asc) == expected


def test_aac_raw_frames_are_packets_and_keyframes() -> None:
    pkt = flv.audio(audio_tag(1, b"\x21\x00"), 23)
    assert pkt == MediaPacket(1, 23000, 23000, b"\x21\x00", keyframe=True)
    assert flv.audio(audio_tag(1, b""), 0) is None
    assert flv.audio(b"", 0) is None


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        (audio_tag(1, b"x", fmt=2), UnsupportedMedia, "MP3; only AAC"),
        (audio_tag(1, b"x", fmt=9), UnsupportedMedia, "enhanced-RTMP audio"),
        (b"\xaf", BadRequest, "without a packet type"),
        (audio_tag(0, b"\x12"), BadRequest, "AudioSpecificConfig of 1 bytes"),
        (audio_tag(0, bytes([0x16, 0x90])), BadRequest, "reserved sampling frequency index 13"),
        (audio_tag(0, bytes([0x17, 0x80])), BadRequest, "truncated"),
        (audio_tag(3, b"x"), BadRequest, "AACPacketType 3"),
    ],
)
def test_audio_errors(body: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        flv.audio(body, 0)


def _tag(type_id: int, ts: int, body: bytes) -> bytes:
    head = bytes([type_id]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
    head += bytes([ts >> 24]) + bytes(3)
    return head + body + (11 + len(body)).to_bytes(4, "big")


def test_aggregate_messages_split_into_rebased_tags() -> None:
    body = _tag(9, 5000, b"v1") + _tag(8, 5010, b"a1") + _tag(9, 5040, b"v2")
    assert flv.aggregate(body, 100) == [(9, 100, b"v1"), (8, 110, b"a1"), (9, 140, b"v2")]
    with pytest.raises(BadRequest, match="past the end"):
        flv.aggregate(body[:-3], 100)
