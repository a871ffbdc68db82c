"""StreamRelay: one published stream at its ingest edge.

Packets from the publisher go into the GOP cache and, live, to the one transcoder worker that
currently pulls the stream. A worker with a newer epoch replaces the current one (make the newest
owner win, as the placement does); an older epoch is refused. When the current worker's link
breaks while the publisher is still live, `on_broken(epoch)` tells the edge to report it, which
is the fast path of failover.

The other direction of the link carries the worker's low-latency feed; the relay hands it to the
stream's `Feed` only while that worker is current, so a superseded worker can never reach viewers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cluster.errors import Conflict
from cluster.logs import stream_logger
from cluster.medialink import frames
from cluster.medialink.frames import CodecConfig, Kind, MediaPacket
from edge.playback.webrtc.feed import Feed
from edge.relay.gop import GopCache

log = logging.getLogger(__name__)

# A worker this far behind is stuck; dropping it (and reporting the link) beats buffering forever.
MAX_BACKLOG = 32 * 1024 * 1024


class Subscriber:
    """The write side of one media link, owned by the relay while it is current."""

    def __init__(self, writer: asyncio.StreamWriter, epoch: int, node: str) -> None:
        self.writer = writer
        self.epoch = epoch
        self.node = node
        self.closed = asyncio.Event()

    def send(self, data: bytes) -> bool:
        if self.writer.is_closing():
            return False
        if self.writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            return False
        self.writer.write(data)
        return True

    def keyreq(self) -> bool:
        return self.send(frames.encode(Kind.KEYREQ))

    def close(self, error: str = "", detail: str = "") -> None:
        if not self.writer.is_closing():
            if error:
                self.writer.write(
                    frames.encode_json(Kind.ERROR, {"error": error, "detail": detail})
                )
            self.writer.close()
        self.closed.set()


class StreamRelay:
    def __init__(
        self,
        stream: str,
        gop: GopCache,
        on_broken: Callable[[int], None],
        feed: Feed | None = None,
        on_keyreq: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream = stream
        self.gop = gop
        self.on_broken = on_broken
        self.on_keyreq = on_keyreq  # the worker wants a keyframe from the publisher
        self.subscriber: Subscriber | None = None
        self.min_epoch = 0  # the newest placement epoch this edge has seen
        self.packets_in = 0
        self.ended = False
        self.latest_us: int | None = None  # the publisher's newest timestamp: "live" for the feed
        # The feed may outlive this relay (a publisher that reconnects: see publish.py).
        self.feed = feed if feed is not None else Feed(stream)
        self.feed.new_publisher(lambda: self.latest_us)
        self.log = stream_logger(log, stream)

    # publisher side
    def codec(self, cfg: CodecConfig) -> None:
        self.gop.codec(cfg)
        self._send(frames.encode_codec(cfg))

    def packet(self, pkt: MediaPacket) -> None:
        self.packets_in += 1
        if self.latest_us is None or pkt.pts_us > self.latest_us:
            self.latest_us = pkt.pts_us
        self.gop.add(pkt)
        self._send(frames.encode_packet(pkt, replay=False))

    def end(self, reason: str, keep_feed: bool = False) -> None:
        """The publisher is gone: tell the worker (EOS) and forget it; no failover for this.
        The feed's viewers are ended too, unless the owner keeps it for a reconnect."""
        self.ended = True
        sub, self.subscriber = self.subscriber, None
        if sub:
            sub.send(frames.encode(Kind.EOS))
            sub.close()
        if keep_feed:
            self.feed.source_lost(self.feed.epoch)
        else:
            self.feed.close()
        self.log.info("relay ended: %s", reason)

    def _send(self, data: bytes) -> None:
        sub = self.subscriber
        if sub and not sub.send(data):
            self.log.warning(
                "worker %s epoch %d cannot keep up; dropping its link", sub.node, sub.epoch
            )
            self._lost(sub)

    # transcoder side
    def attach(self, writer: asyncio.StreamWriter, epoch: int, node: str) -> Subscriber:
        """Make a worker the current subscriber: ACCEPT, codecs, GOP replay, then live packets."""
        if self.ended:
            raise Conflict("the publisher has ended")
        if epoch < self.min_epoch or (self.subscriber and epoch <= self.subscriber.epoch):
            current = self.subscriber.epoch if self.subscriber else self.min_epoch
            raise Conflict(f"epoch {epoch} is stale; current is {current}")
        old, self.subscriber = self.subscriber, None
        if old:
            self.log.info(
                "epoch %d (%s) supersedes epoch %d (%s)", epoch, node, old.epoch, old.node
            )
            old.close("superseded", f"epoch {epoch} took over")
        self.min_epoch = epoch
        sub = Subscriber(writer, epoch, node)
        codecs, packets = self.gop.snapshot()
        parts = [frames.encode_json(Kind.ACCEPT, {"v": 1, "stream": self.stream, "epoch": epoch})]
        parts += [frames.encode_codec(c) for c in codecs]
        parts += [frames.encode_packet(p, replay=True) for p in packets]
        writer.write(b"".join(parts))
        self.subscriber = sub
        self.feed.source(epoch, sub.keyreq)
        self.log.info(
            "worker %s attached at epoch %d; replayed %d packets (%.1f s)",
            node,
            epoch,
            len(packets),
            self.gop.duration_us / 1e6,
        )
        return sub

    def from_worker(self, sub: Subscriber, frame: frames.Frame) -> None:
        """A frame the worker sent: its feed goes to viewers, and only while it is current."""
        if sub is not self.subscriber:
            return
        if frame.kind is Kind.PACKET:
            self.feed.packet(sub.epoch, frame.packet())
        elif frame.kind is Kind.CODEC:
            self.feed.codec(sub.epoch, frame.codec())
        elif frame.kind is Kind.KEYREQ:
            # Up to the ingest protocol: WHIP sends a rate-limited PLI, RTMP has no way to ask.
            self.log.debug("worker %s asked for a keyframe", sub.node)
            self.on_keyreq()

    def detached(self, sub: Subscriber) -> None:
        """The worker's link closed from its side (EOF, reset, or a protocol error)."""
        if self.subscriber is sub:
            self._lost(sub)

    def _lost(self, sub: Subscriber) -> None:
        self.subscriber = None
        self.feed.source_lost(sub.epoch)
        sub.close()
        if not self.ended:
            self.log.warning("media link of epoch %d (%s) broke", sub.epoch, sub.node)
            self.on_broken(sub.epoch)

    def note_epoch(self, epoch: int) -> None:
        """The placement moved on: refuse anything older from now on."""
        self.min_epoch = max(self.min_epoch, epoch)
        sub = self.subscriber
        if sub and sub.epoch < epoch:
            self.subscriber = None
            sub.close("superseded", f"placement is at epoch {epoch}")
