"""GOP cache (pure): the codec configs and the packets since the last video keyframe.

A newly assigned transcoder needs a keyframe to start decoding; replaying the cache lets it start
at once instead of waiting for the publisher's next keyframe (OBS's default puts them 8 s apart).
The cache is bounded in bytes and in time: past either bound it drops whole GOP prefixes it can
no longer use and, if still too large, stops caching until the next keyframe.
"""

from __future__ import annotations

from cluster.medialink.frames import CodecConfig, MediaPacket


class GopCache:
    def __init__(self, max_bytes: int, max_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.max_us = int(max_seconds * 1_000_000)
        self.codecs: dict[int, CodecConfig] = {}
        self._packets: list[MediaPacket] = []
        self._bytes = 0
        self._video_track: int | None = None
        self._overflowed = False

    def codec(self, cfg: CodecConfig) -> None:
        self.codecs[cfg.track] = cfg
        if cfg.kind == "video":
            self._video_track = cfg.track

    def add(self, pkt: MediaPacket) -> None:
        is_video = pkt.track == self._video_track
        if is_video and pkt.keyframe:
            self._packets = [pkt]
            self._bytes = len(pkt.data)
            self._overflowed = False
            return
        if self._overflowed or not self._packets:
            # Nothing useful before the first keyframe: a decoder could not start from it.
            return
        self._packets.append(pkt)
        self._bytes += len(pkt.data)
        span = pkt.dts_us - self._packets[0].dts_us
        if self._bytes > self.max_bytes or span > self.max_us:
            # A GOP this long is unusable as a whole; better no replay than an unbounded one.
            self._packets = []
            self._bytes = 0
            self._overflowed = True

    def snapshot(self) -> tuple[list[CodecConfig], list[MediaPacket]]:
        return list(self.codecs.values()), list(self._packets)

    @property
    def size(self) -> int:
        return self._bytes

    @property
    def duration_us(self) -> int:
        if len(self._packets) < 2:
            return 0
        return self._packets[-1].dts_us - self._packets[0].dts_us
