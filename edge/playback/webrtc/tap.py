"""The ingest edge's side of edge-to-edge WHEP: its Feed's output in, media-link frames to an edge.

WHEP is served where the feed is, and the feed comes to the stream's ingest edge. Another edge
with viewers of the stream subscribes once (HELLO with `"feed": true` on the ingest edge's media
port) and gets what this edge's own viewers get: the feed after its catching-up and epoch
fencing, on the feed's continuous timeline, starting at a keyframe. A transcoder failover is
therefore invisible to the subscribing edge: its feed never switches source.
"""

from __future__ import annotations

import asyncio

from cluster.medialink import frames
from cluster.medialink.frames import FEED_VIDEO, CodecConfig, Kind, MediaPacket

# An edge this far behind is stuck or slow: it skips to the next keyframe rather than grow this.
MAX_BACKLOG = 4 * 1024 * 1024


class FeedTap:
    def __init__(self, writer: asyncio.StreamWriter, node: str) -> None:
        self.writer = writer
        self.node = node
        self.waiting_key = True
        self.skips = 0
        self.sent = 0
        self._announced: dict[int, CodecConfig] = {}

    def put(self, cfg: CodecConfig, pts_us: int, keyframe: bool, data: bytes) -> bool:
        """Send one packet of the feed's timeline; False when it skipped (the caller asks an IDR)."""
        if self.writer.is_closing():
            return True
        video = cfg.track == FEED_VIDEO
        if video and self.waiting_key:
            if not keyframe:
                return True
            self.waiting_key = False
        if self.writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            self.skips += 1
            self.waiting_key = True
            return False
        out = b""
        if self._announced.get(cfg.track) != cfg:
            self._announced[cfg.track] = cfg
            out = frames.encode_codec(cfg)
        pkt = MediaPacket(cfg.track, pts_us, pts_us, data, keyframe)
        self.writer.write(out + frames.encode_packet(pkt))
        self.sent += 1
        return True

    def end(self) -> None:
        """The stream ended here."""
        if not self.writer.is_closing():
            self.writer.write(frames.encode(Kind.EOS))
            self.writer.close()
