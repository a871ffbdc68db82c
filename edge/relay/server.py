"""The edge's media-link server: transcoder workers connect, say HELLO, and pull a stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cluster.errors import BadRequest, Conflict, ZoocastError
from cluster.ids import node_id, stream_id
from cluster.medialink import frames
from cluster.medialink.frames import FrameReader, Kind
from edge.relay.hub import StreamRelay

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 5.0


class LinkServer:
    def __init__(self, lookup: Callable[[str], StreamRelay | None]) -> None:
        self.lookup = lookup
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = FrameReader()
        peer = writer.get_extra_info("peername")
        try:
            hello, *early = await asyncio.wait_for(
                self._first_frames(reader, parser), HELLO_TIMEOUT
            )
            if hello.kind is not Kind.HELLO:
                raise BadRequest(f"expected HELLO, got {hello.kind.name}")
            body = hello.json()
            stream = stream_id(body.get("stream", ""))
            epoch = body.get("epoch")
            # Another edge subscribing to the WebRTC feed has no epoch: it never replaces a worker.
            edge_feed = body.get("feed") is True
            if not edge_feed and (not isinstance(epoch, int) or epoch < 1):
                raise BadRequest("HELLO needs a positive integer epoch")
            node = node_id(body.get("node", ""))
            relay = self.lookup(stream)
            if relay is None:
                raise BadRequest(f"stream {stream} is not published here")
            if edge_feed:
                await self._edge_feed(relay, node, reader, writer, parser, early)
                return
            assert isinstance(epoch, int)
            sub = relay.attach(writer, epoch, node)
        except (ZoocastError, TimeoutError) as exc:
            detail = exc.detail if isinstance(exc, ZoocastError) else "no HELLO in time"
            code = exc.code if isinstance(exc, ZoocastError) else "timeout"
            log.info("media link from %s refused: %s", peer, detail)
            writer.write(frames.encode_json(Kind.ERROR, {"error": code, "detail": detail}))
            await writer.drain()
            return
        try:
            # After HELLO a worker sends its low-latency feed (and KEYREQ); reading also detects
            # its death at once. What came in the same read as HELLO is the feed's start.
            for frame in early:
                relay.from_worker(sub, frame)
            while not sub.closed.is_set():
                data = await reader.read(65536)
                if not data:
                    break
                for frame in parser.feed(data):
                    relay.from_worker(sub, frame)
        except (ConnectionError, ZoocastError):
            pass
        finally:
            relay.detached(sub)

    @staticmethod
    async def _edge_feed(
        relay: StreamRelay,
        node: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: FrameReader,
        early: list[frames.Frame],
    ) -> None:
        """Serve the stream's WebRTC feed to another edge until it leaves (edge/playback/webrtc/tap.py)."""
        if relay.ended:
            raise Conflict("the publisher has ended")
        writer.write(frames.encode_json(Kind.ACCEPT, {"v": 1, "stream": relay.stream, "epoch": 0}))
        tap = relay.feed.add_tap(writer, node)
        try:
            got = early
            while True:
                if any(f.kind is Kind.KEYREQ for f in got):
                    relay.feed.request_keyframe(f"edge {node}")
                data = await reader.read(4096)
                if not data:
                    break
                got = parser.feed(data)
        finally:
            relay.feed.remove_tap(tap)

    @staticmethod
    async def _first_frames(
        reader: asyncio.StreamReader, parser: FrameReader
    ) -> list[frames.Frame]:
        """HELLO and whatever frames arrived with it (a worker need not wait for ACCEPT)."""
        while True:
            data = await reader.read(4096)
            if not data:
                raise BadRequest("closed before HELLO")
            got = parser.feed(data)
            if got:
                return got
