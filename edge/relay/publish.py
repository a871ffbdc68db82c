"""Publishing at the edge: a checked publisher in, a registered relay and its znode out.

Order matters: the key is checked before anything is written; the ephemeral publisher znode is
the lock that makes a second publisher of a live stream fail with 409; the publish is answered
only once a transcoder is placed, so a publisher is refused with a clear reason rather than
streaming into nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable

from cluster.config import Settings
from cluster.errors import BadRequest, Conflict, Unavailable, ZkNodeExists
from cluster.ids import stream_id
from cluster.logs import stream_logger
from cluster.medialink.frames import CodecConfig, MediaPacket
from cluster.paths import Paths
from cluster.payloads import Placement, Publisher
from cluster.registry import Registry
from cluster.zk.bridge import ZkBridge
from cluster.zk.ephemeral import EphemeralNode
from cluster.zk.watch import DataWatch
from edge.playback.webrtc.feed import Feed
from edge.relay.gop import GopCache
from edge.relay.hub import StreamRelay

log = logging.getLogger(__name__)


class Publishing:
    """Every stream published at this edge, by stream id. Owns the relays and their znodes."""

    def __init__(
        self, settings: Settings, zk: ZkBridge, paths: Paths, on_change: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.zk = zk
        self.paths = paths
        self.registry = Registry(zk, paths)
        self.relays: dict[str, StreamRelay] = {}
        self.sessions: dict[str, PublishSession] = {}
        self.on_change = on_change
        # WHEP feeds outlive a publish session by `feed_grace` (setting whep_grace), so viewers
        # ride out a reconnect (OBS retries after a few seconds); past that their sessions end.
        self.feeds: dict[str, Feed] = {}
        self.feed_grace = settings.whep_grace
        self._feed_timers: dict[str, asyncio.TimerHandle] = {}
        # While a feed waits out its grace, its stream's znode is watched: a stream deleted
        # (and perhaps created again) must not keep old viewers frozen on it until then.
        self._feed_watches: dict[str, DataWatch] = {}

    def relay(self, stream: str) -> StreamRelay | None:
        return self.relays.get(stream)

    async def start(
        self, app: str, stream: str, query: dict[str, str], peer: str, protocol: str = "rtmp"
    ) -> PublishSession:
        if app != "live":
            raise BadRequest(f"unknown application {app!r}; publish to /live")
        stream = stream_id(stream)
        await self.registry.check_key(stream, query.get("key", ""))
        if stream in self.sessions:
            raise Conflict(f"stream {stream} is already being published")
        session = PublishSession(self, stream, protocol, peer)
        self.sessions[stream] = session
        try:
            await session.open()
        except BaseException:
            self.sessions.pop(stream, None)
            await session.close("refused")
            raise
        self.on_change()
        return session

    async def stop(self) -> None:
        await asyncio.gather(*(s.close("edge stopping") for s in list(self.sessions.values())))
        for stream in list(self.feeds):
            self._expire_feed(stream)

    def take_feed(self, stream: str) -> Feed:
        """The stream's WHEP feed for a new publish session: the one its viewers still hold
        if the last publisher left less than `feed_grace` ago, else a new one."""
        self._end_grace(stream)
        feed = self.feeds.get(stream)
        if feed is None or feed.ended:
            feed = self.feeds[stream] = Feed(stream)
        return feed

    def release_feed(self, stream: str) -> None:
        """The publish session ended: keep the feed for a reconnect while anyone watches."""
        feed = self.feeds.get(stream)
        if feed is None or stream in self._feed_timers:
            return
        if not feed.viewers and not feed.taps:
            self._expire_feed(stream)
            return
        loop = asyncio.get_running_loop()
        self._feed_timers[stream] = loop.call_later(self.feed_grace, self._expire_feed, stream)
        self._feed_watches[stream] = self.zk.watch_data(
            self.paths.stream(stream), lambda data: self._stream_changed(stream, data)
        )

    def _stream_changed(self, stream: str, data: bytes | None) -> None:
        if data is None:
            stream_logger(log, stream).info("stream deleted: its WHEP viewers are ended now")
            self._expire_feed(stream)

    def _end_grace(self, stream: str) -> None:
        timer = self._feed_timers.pop(stream, None)
        if timer is not None:
            timer.cancel()
        watch = self._feed_watches.pop(stream, None)
        if watch is not None:
            watch.cancel()

    def _expire_feed(self, stream: str) -> None:
        self._end_grace(stream)
        feed = self.feeds.pop(stream, None)
        if feed is not None:
            feed.close()


class PublishSession:
    """One publisher's lifetime at this edge: znode, relay, placement watch; `close` undoes all of it."""

    def __init__(self, owner: Publishing, stream: str, protocol: str, peer: str) -> None:
        self.owner = owner
        self.stream = stream
        self.protocol = protocol
        self.peer = peer
        self.session_id = uuid.uuid4().hex[:12]
        self.log = stream_logger(log, stream)
        self.relay = StreamRelay(
            stream,
            GopCache(
                owner.settings.gop_cache_bytes,
                owner.settings.gop_cache_seconds,
                owner.settings.gop_cache_min_seconds,
            ),
            self._report_broken,
            owner.take_feed(stream),
            self.request_keyframe,
        )
        self.payload = Publisher(
            edge=owner.settings.node_id,
            session=self.session_id,
            media_addr=owner.settings.media_addr,
            protocol=protocol,
        )
        self.placed = asyncio.Event()
        self.placement: Placement | None = None
        self._start_epoch = 0
        self._znode: EphemeralNode | None = None
        self._watch: DataWatch | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        # Set by an ingest protocol that can ask its publisher for a keyframe (WHIP: RTCP PLI).
        self.keyframe_source: Callable[[], object] | None = None

    async def open(self) -> None:
        zk, paths = self.owner.zk, self.owner.paths
        current = await zk.get(paths.placement(self.stream))
        self._start_epoch = Placement.parse(current[0]).epoch if current else 0
        try:
            self._znode = await zk.ephemeral(paths.publisher(self.stream), bytes(self.payload))
        except ZkNodeExists:
            raise Conflict(
                f"stream {self.stream} is already being published (at another edge)"
            ) from None
        self.owner.relays[self.stream] = self.relay
        self._watch = zk.watch_data(paths.placement(self.stream), self._on_placement)
        try:
            await asyncio.wait_for(self.placed.wait(), self.owner.settings.placement_wait)
        except TimeoutError:
            reason = self.placement.reason if self.placement else "no coordinator answered"
            raise Unavailable(f"no transcoder capacity for {self.stream}: {reason}") from None
        assert self.placement is not None
        self.log.info(
            "publishing from %s over %s; placed on %s at epoch %d",
            self.peer,
            self.protocol,
            self.placement.transcoder,
            self.placement.epoch,
        )

    def _on_placement(self, data: bytes | None) -> None:
        if data is None:
            return
        try:
            placement = Placement.parse(data)
        except BadRequest:
            self.log.warning("ignoring unreadable placement")
            return
        self.placement = placement
        self.relay.note_epoch(placement.epoch)
        if placement.state == "placed" and placement.epoch > self._start_epoch:
            self.placed.set()

    def _report_broken(self, epoch: int) -> None:
        """Fast path: tell the leader the media link of `epoch` died, so it need not wait for ZooKeeper."""
        if self._closed or self._znode is None:
            return
        self._publish(dataclasses.replace(self.payload, broken_epoch=epoch))

    def _publish(self, payload: Publisher) -> None:
        self.payload = payload
        task = asyncio.get_running_loop().create_task(self._write_payload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_payload(self) -> None:
        try:
            assert self._znode is not None
            await self._znode.update(bytes(self.payload))
        except Exception:
            self.log.exception("could not report the broken media link")

    # the sink the ingest protocol writes into
    def codec(self, cfg: CodecConfig) -> None:
        self.relay.codec(cfg)
        codecs = sorted({*self.payload.codecs, cfg.codec})
        if codecs != self.payload.codecs:
            self._publish(dataclasses.replace(self.payload, codecs=codecs))

    def packet(self, pkt: MediaPacket) -> None:
        self.relay.packet(pkt)

    def request_keyframe(self) -> None:
        """A transcoder asked for a keyframe (KEYREQ): pass it on if the protocol can (RTMP cannot)."""
        if self.keyframe_source is not None and not self._closed:
            self.keyframe_source()

    async def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.relay.end(reason, keep_feed=True)
        self.owner.release_feed(self.stream)
        if self.owner.relays.get(self.stream) is self.relay:
            del self.owner.relays[self.stream]
        if self.owner.sessions.get(self.stream) is self:
            del self.owner.sessions[self.stream]
        if self._watch is not None:
            self._watch.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._znode is not None:
            try:
                await self._znode.remove()
            except Exception:
                self.log.exception("could not remove the publisher znode")
        self.log.info("publish session closed: %s (%d packets)", reason, self.relay.packets_in)
        self.owner.on_change()
