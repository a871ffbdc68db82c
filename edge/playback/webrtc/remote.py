"""WHEP at an edge that is not the stream's ingest edge: one feed pulled from the ingest edge.

The first viewer of a stream here makes this edge subscribe to the ingest edge's feed (HELLO with
`"feed": true` on its media port, see tap.py); every later viewer shares that one link. The feed
arrives on the ingest edge's continuous timeline, so this edge's Feed has a single source for
the link's whole life. KEYREQ from viewers here goes up the link. The link ends when the stream
ends at the ingest edge (its viewers here are ended too, and reconnect) or `linger` seconds
after the last viewer here left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from cluster.errors import BadRequest, ZoocastError
from cluster.logs import stream_logger
from cluster.medialink import frames
from cluster.medialink.frames import FrameReader, Kind
from cluster.paths import Paths
from cluster.payloads import Publisher
from cluster.zk.bridge import ZkBridge
from edge.playback.webrtc.feed import Feed

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
Locate = Callable[[str], Awaitable[str | None]]  # stream -> "host:port" of its ingest edge


def locate_by_publisher(zk: ZkBridge, paths: Paths, node: str) -> Locate:
    """Where a stream's ingest edge serves its media link, from the publisher znode; None when
    the stream is not live, or is published here (then this edge has the feed or nothing)."""

    async def locate(stream: str) -> str | None:
        got = await zk.get(paths.publisher(stream))
        if got is None:
            return None
        try:
            publisher = Publisher.parse(got[0])
        except BadRequest:
            return None
        return None if publisher.edge == node else publisher.media_addr

    return locate


class RemoteFeeds:
    def __init__(self, locate: Locate, node: str, linger: float = 10.0) -> None:
        self.locate = locate
        self.node = node
        self.linger = linger
        self.feeds: dict[str, Feed] = {}
        self._opening: dict[str, asyncio.Future[Feed | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, stream: str) -> Feed | None:
        """The stream's feed pulled from its ingest edge, subscribing if needed; None if not live."""
        feed = self.feeds.get(stream)
        if feed is not None and not feed.ended:
            return feed
        # Viewers arriving together share one subscription attempt.
        opening = self._opening.get(stream)
        if opening is None:
            opening = asyncio.ensure_future(self._open(stream))
            self._opening[stream] = opening
            opening.add_done_callback(lambda _: self._opening.pop(stream, None))
        return await asyncio.shield(opening)

    async def _open(self, stream: str) -> Feed | None:
        addr = await self.locate(stream)
        if addr is None:
            return None
        host, _, port = addr.rpartition(":")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError, ValueError):
            stream_logger(log, stream).warning("cannot reach the ingest edge at %s", addr)
            return None
        hello = {"v": 1, "stream": stream, "epoch": 0, "node": self.node, "feed": True}
        writer.write(frames.encode_json(Kind.HELLO, hello))
        parser = FrameReader()
        try:
            first = await asyncio.wait_for(_first(reader, parser), CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ZoocastError):
            first = []
        if not first or first[0].kind is not Kind.ACCEPT:
            writer.close()
            return None

        def keyreq() -> bool:
            if writer.is_closing():
                return False
            writer.write(frames.encode(Kind.KEYREQ))
            return True

        feed = Feed(stream)
        feed.source(1, keyreq)
        self.feeds[stream] = feed
        pull = self._pull(feed, first[1:], reader, writer, parser)
        task = asyncio.get_running_loop().create_task(pull)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        stream_logger(log, stream).info("pulling the WebRTC feed from the ingest edge %s", addr)
        return feed

    async def _pull(
        self,
        feed: Feed,
        pending: list[frames.Frame],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: FrameReader,
    ) -> None:
        reason = "the ingest edge closed the link"
        idle_since: float | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                for frame in pending:
                    if frame.kind is Kind.PACKET:
                        feed.packet(1, frame.packet())
                    elif frame.kind is Kind.CODEC:
                        feed.codec(1, frame.codec())
                    elif frame.kind in (Kind.EOS, Kind.ERROR):
                        raise EOFError(frame.kind.name)
                try:
                    data = await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    data = None  # nothing for a second; still check the viewers below
                if data == b"":
                    break
                pending = parser.feed(data or b"")
                if feed.viewers:
                    idle_since = None
                elif idle_since is None:
                    idle_since = loop.time()
                elif loop.time() - idle_since > self.linger:
                    reason = "no viewer left"
                    break
        except EOFError as exc:
            reason = f"the ingest edge sent {exc}"
        except (ConnectionError, ZoocastError) as exc:
            reason = f"link error: {exc}"
        finally:
            writer.close()
            if self.feeds.get(feed.stream) is feed:
                del self.feeds[feed.stream]
            feed.close()
            stream_logger(log, feed.stream).info("stopped pulling the WebRTC feed: %s", reason)

    async def close_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _first(reader: asyncio.StreamReader, parser: FrameReader) -> list[frames.Frame]:
    """The first frames the ingest edge sends (ACCEPT, then maybe the feed already)."""
    while data := await reader.read(4096):
        got = parser.feed(data)
        if got:
            return got
    return []
