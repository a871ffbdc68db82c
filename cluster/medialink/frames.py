"""Media-link framing (pure: bytes in, frames out).

One TCP connection per stream and direction. Every frame is

    u32 length (big-endian, of what follows) | u8 type | body

    HELLO   1  JSON {"v":1, "stream", "epoch", "node"}   subscriber -> source: who pulls, as which epoch
    ACCEPT  2  JSON {"v":1, "stream", "epoch"}            source -> subscriber: you own the feed now
    CODEC   3  JSON CodecConfig                          a track's parameters; precedes its packets
    PACKET  4  u8 track | u8 flags | i64 pts_us | i64 dts_us | payload
    EOS     5  empty                                     the publisher ended the stream cleanly
    KEYREQ  6  empty                                     subscriber -> source: please send a keyframe
    ERROR   7  JSON {"error", "detail"}                  the sender is closing; why

Both directions of a worker's link carry media. Edge -> worker: the publisher's tracks (CODEC,
PACKET, EOS). Worker -> edge, after ACCEPT: the low-latency feed for WebRTC viewers, as CODEC
and PACKET frames of its own tracks (FEED_VIDEO: H.264 constrained baseline, Annex-B, SPS/PPS
before every IDR, no B-frames, the same encode as one HLS rung; FEED_AUDIO: Opus, 48 kHz, 20 ms
packets). KEYREQ travels against the media: the edge asks the worker for an IDR on the feed (a
new viewer, a viewer's PLI), the worker asks the edge (which may ask the publisher).

The feed as the worker sends it: each track's CODEC once, before that track's first PACKET
(video when the first frame is decided, audio when the audio chain starts, in either order; a
track absent from the source has none). FEED_VIDEO: width/height of the rung, bitstream
"annexb", no extradata; one access unit per packet, pts == dts. FEED_AUDIO: extradata is the
OpusHead; 20 ms packets, all flagged keyframe. Feed packets never carry the replay flag.
KEYREQ answer: the next frame the WebRTC rung encodes is an IDR, at most one per 0.5 s (the
worker's `feed_key_interval`); a KEYREQ within that interval of the last accepted one is dropped,
not deferred, so ask again if no keyframe came. The worker drops feed packets rather than wait
for an edge that does not read (video then resumes at a keyframe it forces).

Feed timestamps are the publisher's, so a successor's feed continues on the same clock, with
two differences: it starts where its predecessor's last HLS segment ended (an IDR on the segment
grid), which is before the last packets the predecessor's feed sent (that segment was never
closed), and it encodes the GOP replay from there in a burst faster than real time; where live
packets take over from the replay it forces an IDR, at the first live packet's pts.

Edge to edge: an edge with WHEP viewers of a stream published at another edge pulls that
edge's feed once, on its media port, with HELLO {"v":1, "stream", "epoch": 0, "node", "feed":
true}. It never replaces the worker (no epoch); it gets ACCEPT, then CODEC/PACKET of the feed
as the ingest edge's own viewers get it (live, starting at a keyframe, timestamps on one
continuous timeline across transcoder failovers), EOS when the stream ends; it sends KEYREQ.

Timestamps are microseconds on the publisher's clock; flags bit 0 = keyframe, bit 1 = from the
GOP cache (replayed, not live). A frame longer than MAX_FRAME is a protocol error: the reader stops
instead of buffering without bound.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from cluster.errors import BadRequest, TooLarge

MAX_FRAME = 16 * 1024 * 1024
_HEAD = struct.Struct(">IB")
_PACKET = struct.Struct(">BBqq")

FLAG_KEY = 1
FLAG_REPLAY = 2

# Track numbers of the worker's low-latency feed (worker -> edge).
FEED_VIDEO = 0
FEED_AUDIO = 1


class Kind(IntEnum):
    HELLO = 1
    ACCEPT = 2
    CODEC = 3
    PACKET = 4
    EOS = 5
    KEYREQ = 6
    ERROR = 7


@dataclass(frozen=True)
class CodecConfig:
    """A track's codec parameters. `bitstream` says how H.264 NAL units are framed:
    "avcc" (length-prefixed, from FLV/MP4, extradata = avcC) or "annexb" (start codes)."""

    track: int
    kind: str  # video | audio
    codec: str  # h264 | aac | opus | vp8
    extradata: bytes = b""
    bitstream: str = ""
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["extradata"] = base64.b64encode(self.extradata).decode()
        return body

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CodecConfig:
        try:
            raw = dict(raw)
            raw["extradata"] = base64.b64decode(raw.get("extradata", ""))
            cfg = cls(**raw)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"bad codec config: {exc}") from exc
        if cfg.kind not in {"video", "audio"} or not 0 <= cfg.track < 256:
            raise BadRequest(f"bad codec config: kind={cfg.kind!r} track={cfg.track}")
        return cfg


@dataclass(frozen=True)
class MediaPacket:
    track: int
    pts_us: int
    dts_us: int
    data: bytes
    keyframe: bool = False
    replay: bool = False


@dataclass(frozen=True)
class Frame:
    kind: Kind
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise BadRequest(f"{self.kind.name}: body is not JSON") from exc
        if not isinstance(value, dict):
            raise BadRequest(f"{self.kind.name}: body is not an object")
        return value

    def packet(self) -> MediaPacket:
        if len(self.body) < _PACKET.size:
            raise BadRequest("PACKET frame too short")
        track, flags, pts, dts = _PACKET.unpack_from(self.body)
        return MediaPacket(
            track,
            pts,
            dts,
            self.body[_PACKET.size :],
            bool(flags & FLAG_KEY),
            bool(flags & FLAG_REPLAY),
        )

    def codec(self) -> CodecConfig:
        return CodecConfig.from_json(self.json())


def encode(kind: Kind, body: bytes = b"") -> bytes:
    if len(body) + 1 > MAX_FRAME:
        raise TooLarge(f"media-link frame of {len(body)} bytes")
    return _HEAD.pack(len(body) + 1, kind) + body


def encode_json(kind: Kind, value: dict[str, Any]) -> bytes:
    return encode(kind, json.dumps(value, separators=(",", ":")).encode())


def encode_codec(cfg: CodecConfig) -> bytes:
    return encode_json(Kind.CODEC, cfg.to_json())


def encode_packet(pkt: MediaPacket, replay: bool | None = None) -> bytes:
    flags = (FLAG_KEY if pkt.keyframe else 0) | (
        FLAG_REPLAY if (pkt.replay if replay is None else replay) else 0
    )
    return encode(Kind.PACKET, _PACKET.pack(pkt.track, flags, pkt.pts_us, pkt.dts_us) + pkt.data)


class FrameReader:
    """Incremental parser: feed bytes as they arrive, take whole frames out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= _HEAD.size:
            length, kind = _HEAD.unpack_from(self._buf)
            if length < 1 or length > MAX_FRAME:
                raise TooLarge(f"media-link frame length {length}")
            if len(self._buf) < 4 + length:
                break
            try:
                k = Kind(kind)
            except ValueError:
                raise BadRequest(f"unknown media-link frame type {kind}") from None
            frames.append(Frame(k, bytes(self._buf[_HEAD.size : 4 + length])))
            del self._buf[: 4 + length]
        return frames
