"""From encoded WebRTC frames to media-link packets (pure: bytes and numbers in, MediaPackets out).

The pass-through receivers (passthrough.py) yield one encoded frame per RTP timestamp: an H.264
access unit in Annex-B, a VP8 frame, an Opus packet, each with its RTP timestamp already made
zero-based and unwrapped by aiortc. Here they get microsecond timestamps, keyframe flags read
from the bitstream, and (for H.264) SPS/PPS in front of every IDR, which a transcoder that starts
from the GOP cache needs and a publisher may send only once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cluster.medialink.frames import CodecConfig, MediaPacket

US = 1_000_000
VIDEO_TRACK = 0  # the same track numbers as RTMP ingest
AUDIO_TRACK = 1
# aiortc's jitter buffer releases a frame once the next one starts arriving (video: one frame,
# taken as 1/30 s) and holds audio until 4 more packets are in (4 x 20 ms of Opus).
VIDEO_HOLD_US = 33_333
AUDIO_HOLD_US = 80_000
_START = re.compile(b"\x00\x00\x01")
_IDR, _SPS, _PPS = 5, 7, 8


def nal_units(annexb: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer, start codes (3 or 4 bytes) removed."""
    starts = [m.end() for m in _START.finditer(annexb)]
    units = []
    for i, begin in enumerate(starts):
        end = len(annexb) if i + 1 == len(starts) else starts[i + 1] - 3
        unit = annexb[begin:end].rstrip(b"\x00") if i + 1 < len(starts) else annexb[begin:end]
        if unit:
            units.append(unit)
    return units


def nal_types(annexb: bytes) -> list[int]:
    return [unit[0] & 0x1F for unit in nal_units(annexb)]


def h264_keyframe(annexb: bytes) -> bool:
    return _IDR in nal_types(annexb)


def vp8_keyframe(frame: bytes) -> bool:
    # RFC 6386 9.1: bit 0 of the frame tag is the frame type, 0 for a key frame.
    return len(frame) >= 3 and frame[0] & 1 == 0


@dataclass
class TrackClock:
    """RTP ticks to microseconds on the session clock, monotonic per track.

    aiortc's timestamps start at 0 for each track separately, so the first frame of a track is
    placed at its arrival time since the session started, less what aiortc's jitter buffer held
    it back (`hold_us`): audio and video line up to within the jitter of their first frames, and
    both start near 0. (RTCP sender reports would line them up exactly; aiortc keeps them private.)
    """

    rate: int
    hold_us: int = 0
    _offset_us: int | None = None
    _last_us: int = -1

    def stamp(self, ticks: int, arrival_us: int) -> int:
        t = ticks * US // self.rate
        if self._offset_us is None:
            self._offset_us = max(0, arrival_us - self.hold_us) - t
        t += self._offset_us
        # A publisher's clock that steps back must not make the media link's time go backwards.
        t = max(t, self._last_us + 1)
        self._last_us = t
        return t


@dataclass
class TrackIn:
    """One published track: its codec config, and its packets converted one by one."""

    track: int
    kind: str  # video | audio
    codec: str  # h264 | vp8 | opus
    clock: TrackClock = field(init=False)
    _headers: bytes = b""  # the latest SPS and PPS, Annex-B
    _started: bool = False

    def __post_init__(self) -> None:
        if self.kind == "video":
            self.clock = TrackClock(90_000, VIDEO_HOLD_US)
        else:
            self.clock = TrackClock(48_000, AUDIO_HOLD_US)

    def config(self) -> CodecConfig:
        if self.codec == "h264":
            return CodecConfig(self.track, "video", "h264", bitstream="annexb")
        if self.codec == "vp8":
            return CodecConfig(self.track, "video", "vp8")
        return CodecConfig(self.track, "audio", "opus", sample_rate=48_000, channels=2)

    def packet(self, data: bytes, ticks: int, arrival_us: int) -> MediaPacket | None:
        """The media-link packet for one frame, or None for video before the first keyframe
        (nothing can decode it)."""
        key = True
        if self.codec == "h264":
            data, key = self._h264(data)
        elif self.codec == "vp8":
            key = vp8_keyframe(data)
        if self.kind == "video" and not self._started:
            if not key:
                return None
            self._started = True
        t = self.clock.stamp(ticks, arrival_us)
        return MediaPacket(self.track, t, t, data, keyframe=key)

    def _h264(self, au: bytes) -> tuple[bytes, bool]:
        types = nal_types(au)
        if _SPS in types and _PPS in types:
            self._headers = b"".join(
                b"\x00\x00\x00\x01" + u for u in nal_units(au) if u[0] & 0x1F in (_SPS, _PPS)
            )
        key = _IDR in types
        if key and _SPS not in types and self._headers:
            au = self._headers + au
        return au, key
