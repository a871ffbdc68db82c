"""FLV tag bodies (RTMP audio and video messages) to codec configs and packets (pure).

    video  u4 frame type | u4 codec id (7 = AVC)
           u8 AVCPacketType (0 sequence header = avcC, 1 NAL units, 2 end of sequence)
           s24 composition time (ms, pts - dts)     | payload
    audio  u4 format (10 = AAC) | u2 rate | u1 size | u1 channels   (meaningless for AAC)
           u8 AACPacketType (0 sequence header = AudioSpecificConfig, 1 raw frame) | payload

Video is track 0 and audio track 1. RTMP timestamps are milliseconds; packets carry
microseconds. NAL units stay length-prefixed ("avcc"), as FLV carries them.
"""

from __future__ import annotations

from cluster.errors import BadRequest, UnsupportedMedia
from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.ingest.rtmp.aac import parse_asc
from edge.ingest.rtmp.avc import avcc_size, check_avcc

VIDEO_TRACK = 0
AUDIO_TRACK = 1

AVC = 7
AAC = 10
_KEYFRAME = 1
_COMMAND_FRAME = 5  # "video info/command frame": seek markers, no picture

_VIDEO_CODECS = {
    2: "Sorenson H.263",
    3: "Screen Video",
    4: "VP6",
    5: "VP6 alpha",
    6: "Screen Video 2",
}
_AUDIO_FORMATS = {
    0: "PCM",
    1: "ADPCM",
    2: "MP3",
    3: "PCM",
    7: "G.711",
    8: "G.711",
    11: "Speex",
    14: "MP3",
}

Media = CodecConfig | MediaPacket


def video(body: bytes, ts_ms: int) -> Media | None:
    """A video message: its CodecConfig, its MediaPacket, or None when it carries no picture."""
    if not body:
        return None
    if body[0] & 0x80:
        # Enhanced RTMP (IsExHeader): HEVC, AV1, VP9 by FourCC.
        raise UnsupportedMedia("enhanced-RTMP video (HEVC/AV1/VP9); send H.264")
    frame_type, codec = body[0] >> 4, body[0] & 0x0F
    if frame_type == _COMMAND_FRAME:
        return None
    if codec != AVC:
        name = _VIDEO_CODECS.get(codec, f"id {codec}")
        raise UnsupportedMedia(f"video codec {name}; only H.264 is supported")
    if len(body) < 5:
        raise BadRequest(f"AVC video tag of {len(body)} bytes")
    kind = body[1]
    composition = int.from_bytes(body[2:5], "big", signed=True)
    payload = body[5:]
    if kind == 0:
        check_avcc(payload)
        width, height = avcc_size(payload)
        return CodecConfig(
            VIDEO_TRACK, "video", "h264", payload, "avcc", width=width, height=height
        )
    if kind == 1:
        if not payload:
            return None
        dts = ts_ms * 1000
        return MediaPacket(
            VIDEO_TRACK, dts + composition * 1000, dts, payload, keyframe=frame_type == _KEYFRAME
        )
    if kind == 2:
        return None
    raise BadRequest(f"unknown AVCPacketType {kind}")


def audio(body: bytes, ts_ms: int) -> Media | None:
    """An audio message: its CodecConfig, its MediaPacket, or None when it is empty."""
    if not body:
        return None
    fmt = body[0] >> 4
    if fmt == 9:
        raise UnsupportedMedia("enhanced-RTMP audio (Opus/FLAC/AC-3 by FourCC); send AAC")
    if fmt != AAC:
        name = _AUDIO_FORMATS.get(fmt, f"format {fmt}")
        raise UnsupportedMedia(f"audio codec {name}; only AAC is supported")
    if len(body) < 2:
        raise BadRequest("AAC audio tag without a packet type")
    payload = body[2:]
    if body[1] == 0:
        rate, channels = parse_asc(payload)
        return CodecConfig(
            AUDIO_TRACK, "audio", "aac", payload, sample_rate=rate, channels=channels
        )
    if body[1] == 1:
        if not payload:
            return None
        # Every AAC frame decodes on its own, so each is a "keyframe" to a cache or muxer.
        return MediaPacket(AUDIO_TRACK, ts_ms * 1000, ts_ms * 1000, payload, keyframe=True)
    raise BadRequest(f"unknown AACPacketType {body[1]}")


def aggregate(body: bytes, ts_ms: int) -> list[tuple[int, int, bytes]]:
    """Split an Aggregate message into (type id, timestamp ms, body) of its FLV tags.

    Each tag is u8 type | u24 size | u24 time | u8 time bits 24-31 | u24 stream id | body |
    u32 back pointer. Tag times are rebased so that the first tag lands on the message's time.
    """
    tags: list[tuple[int, int, bytes]] = []
    pos, first = 0, None
    while pos < len(body):
        if len(body) - pos < 11:
            raise BadRequest("aggregate message: truncated tag header")
        size = int.from_bytes(body[pos + 1 : pos + 4], "big")
        tag_ts = int.from_bytes(body[pos + 4 : pos + 7], "big") | (body[pos + 7] << 24)
        end = pos + 11 + size
        if end + 4 > len(body):
            raise BadRequest("aggregate message: tag runs past the end")
        first = tag_ts if first is None else first
        tags.append((body[pos], ts_ms + tag_ts - first, body[pos + 11 : end]))
        pos = end + 4
    return tags
