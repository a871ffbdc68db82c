"""GOP cache (pure): codec configs and the recent packets a new transcoder needs to take over.

A successor must start decoding at a keyframe, and it must have every frame its predecessor had
not yet packaged. The predecessor cuts segments on its own grid (publisher time), not on the
publisher's keyframes, so the unpackaged frames can reach back past the latest keyframe: keeping
only the last GOP would lose them. The cache therefore starts at the latest keyframe at least
`min_seconds` older than the newest packet (set it to at least one segment duration), or at the
oldest keyframe it has if none is that old.

It is bounded in bytes and in time: past either bound it drops whole GOPs from the front and, if
one GOP alone is too large, stops caching until the next keyframe.
"""

from __future__ import annotations

from collections import deque

from cluster.medialink.frames import CodecConfig, MediaPacket


class GopCache:
    def __init__(self, max_bytes: int, max_seconds: float, min_seconds: float = 0.0) -> None:
        self.max_bytes = max_bytes
        self.max_us = int(max_seconds * 1_000_000)
        self.min_us = int(min_seconds * 1_000_000)
        self.codecs: dict[int, CodecConfig] = {}
        self._packets: deque[MediaPacket] = deque()
        self._keys: deque[int] = deque()  # dts of every video keyframe still in the cache
        self._bytes = 0
        self._video_track: int | None = None
        self._overflowed = False

    def codec(self, cfg: CodecConfig) -> None:
        self.codecs[cfg.track] = cfg
        if cfg.kind == "video":
            self._video_track = cfg.track

    def add(self, pkt: MediaPacket) -> None:
        if pkt.track == self._video_track and pkt.keyframe:
            self._overflowed = False
            self._keys.append(pkt.dts_us)
        elif self._overflowed or not self._packets:
            # Nothing useful before the first keyframe: a decoder could not start from it.
            return
        self._packets.append(pkt)
        self._bytes += len(pkt.data)
        self._trim(pkt.dts_us)

    def _trim(self, newest_us: int) -> None:
        # Drop whole GOPs from the front while the next keyframe is old enough to start from.
        while len(self._keys) > 1 and self._keys[1] <= newest_us - self.min_us:
            self._drop_first_gop()
        while self._bytes > self.max_bytes or newest_us - self._packets[0].dts_us > self.max_us:
            if len(self._keys) > 1:
                self._drop_first_gop()
                continue
            # One GOP alone is over the bounds: better no replay than an unbounded one.
            self._packets.clear()
            self._keys.clear()
            self._bytes = 0
            self._overflowed = True
            return

    def _drop_first_gop(self) -> None:
        self._keys.popleft()
        next_key = self._keys[0]
        while self._packets and not (
            self._packets[0].track == self._video_track
            and self._packets[0].keyframe
            and self._packets[0].dts_us == next_key
        ):
            self._bytes -= len(self._packets.popleft().data)

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
