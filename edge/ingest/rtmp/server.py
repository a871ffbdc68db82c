"""The RTMP listener (the I/O shell around `RtmpSession`): sockets in, publish sinks fed.

The server knows nothing of ZooKeeper or stream keys. For each publish it awaits
`handler.start(app, stream, query, peer)`, which checks and registers the stream and returns the
sink that media goes to, or raises a ZoocastError to refuse it. Every connection lives in its own
task: whatever a client sends (garbage, huge chunks, nothing at all) ends that connection only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from typing import NoReturn, Protocol

from cluster.errors import Conflict, ZoocastError
from cluster.logs import stream_logger
from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.ingest.rtmp.chunk import MAX_MESSAGE
from edge.ingest.rtmp.session import Event, PublishRequest, RtmpSession, Unpublished

log = logging.getLogger(__name__)

_READ = 64 * 1024


class PublishSink(Protocol):
    def codec(self, cfg: CodecConfig) -> None: ...

    def packet(self, pkt: MediaPacket) -> None: ...

    async def close(self, reason: str) -> None: ...


class PublishHandler(Protocol):
    async def start(self, app: str, stream: str, query: dict[str, str], peer: str) -> PublishSink:
        """Check and register a publish; raise a ZoocastError (Unauthorized, BadRequest, Conflict,
        Unavailable) to refuse it. Awaited before any media of the publish is read."""
        ...


class _Closed(Exception):
    """The connection ends for `reason`; not an error of ours."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Connection:
    def __init__(
        self,
        server: RtmpServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        number: int,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        host, port = (writer.get_extra_info("peername") or ("?", 0))[:2]
        self.peer = f"{host}:{port}"
        self.name = f"rtmp#{number}"
        self.session = RtmpSession(
            chunk_size=server.chunk_size,
            max_message=server.max_message,
            now_ms=int(time.monotonic() * 1000),
        )
        self.sink: PublishSink | None = None
        self.stream = ""
        self.packets = 0
        self.deadline = asyncio.get_running_loop().time() + server.setup_timeout

    async def run(self) -> None:
        log.debug("%s: connection from %s", self.name, self.peer)
        reason = "closed by peer"
        try:
            await self._serve()
        except _Closed as exc:
            reason = exc.reason
        except ZoocastError as exc:
            reason = f"protocol error: {exc.detail}"
        except TimeoutError:
            reason = "peer stopped reading"
        except ConnectionError as exc:
            reason = f"connection lost: {exc.__class__.__name__}"
        except asyncio.CancelledError:
            reason = "server stopping"
            raise
        except Exception:
            log.exception("%s: unexpected error", self.name)
            reason = "internal error"
        finally:
            await self._close(reason)

    async def _serve(self) -> None:
        while data := await self._read():
            events = self.session.receive(data)
            await self._flush()
            await self._handle(events)

    async def _read(self) -> bytes:
        idle = self.server.idle_timeout
        if self.sink is not None:
            try:
                return await asyncio.wait_for(self.reader.read(_READ), idle)
            except TimeoutError:
                raise _Closed(f"idle for {idle:g}s") from None
        # Until it publishes, a client gets one deadline in all, not one per byte it trickles.
        setup = self.server.setup_timeout
        left = self.deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(self.reader.read(_READ), max(0.0, min(idle, left)))
        except TimeoutError:
            raise _Closed(f"no publish within {setup:g}s") from None

    async def _handle(self, events: list[Event]) -> None:
        queue = deque(events)
        while queue:
            event = queue.popleft()
            if isinstance(event, MediaPacket):
                if self.sink is not None:
                    self.packets += 1
                    self.sink.packet(event)
            elif isinstance(event, CodecConfig):
                if self.sink is not None:
                    self.sink.codec(event)
            elif isinstance(event, PublishRequest):
                # Accepting releases the messages held since the request; they come first.
                queue.extendleft(reversed(await self._start(event)))
            elif isinstance(event, Unpublished):
                await self._end_publish(event.reason)

    async def _start(self, request: PublishRequest) -> list[Event]:
        try:
            sink = await self.server.handler.start(
                request.app, request.stream, request.query, self.peer
            )
        except ZoocastError as exc:
            await self._refuse(request, exc.code, exc.detail, isinstance(exc, Conflict))
        except Exception:
            log.exception("%s: publish handler failed", self.name)
            await self._refuse(request, "internal", "the edge could not start the publish")
        self.sink, self.stream = sink, request.stream
        stream_logger(log, request.stream).info(
            "%s: %s publishing %s/%s", self.name, self.peer, request.app, request.stream
        )
        events = self.session.accept_publish()
        await self._flush()
        return events

    async def _refuse(
        self, request: PublishRequest, code: str, detail: str, taken: bool = False
    ) -> NoReturn:
        # BadName is what FMS answers for a stream name already in use; OBS shows it as such.
        status = "NetStream.Publish.BadName" if taken else "NetStream.Publish.Rejected"
        self.session.refuse_publish(status, f"{code}: {detail}")
        await self._flush()
        raise _Closed(f"publish of {request.stream!r} refused: {code}: {detail}")

    async def _end_publish(self, reason: str) -> None:
        sink, self.sink = self.sink, None
        if sink is None:
            return
        # A later publish on this connection gets its own setup deadline.
        self.deadline = asyncio.get_running_loop().time() + self.server.setup_timeout
        try:
            await sink.close(reason)
        except Exception:
            log.exception("%s: closing the publish of %s failed", self.name, self.stream)

    async def _flush(self) -> None:
        out = self.session.data_to_send()
        if out:
            self.writer.write(out)
            await asyncio.wait_for(self.writer.drain(), self.server.idle_timeout)

    async def _close(self, reason: str) -> None:
        try:
            await self._end_publish(reason)
        finally:
            self.writer.close()
            logger = stream_logger(log, self.stream) if self.stream else log
            logger.info(
                "%s: %s closed: %s (%d packets)", self.name, self.peer, reason, self.packets
            )


class RtmpServer:
    """Listens for RTMP publishers; `start` binds, `stop` ends every connection and its publish.

    `setup_timeout` bounds the time from TCP connect to a publish request (and between publishes
    on one connection); `idle_timeout` bounds a silence while publishing, or a peer that stops
    reading our answers. `max_message` caps one RTMP message (a video frame) in bytes.
    """

    def __init__(
        self,
        handler: PublishHandler,
        idle_timeout: float = 30.0,
        setup_timeout: float = 10.0,
        chunk_size: int = 4096,
        max_message: int = MAX_MESSAGE,
    ) -> None:
        self.handler = handler
        self.idle_timeout = idle_timeout
        self.setup_timeout = setup_timeout
        self.chunk_size = chunk_size
        self.max_message = max_message
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._numbers = itertools.count(1)

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("RTMP server not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Each task's close path ends its publish (sink.close) before it finishes.
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task rather than asyncio's callback task: Python 3.11 logs a cancelled
        # callback task as an error, and `stop` cancels connections on purpose.
        connection = _Connection(self, reader, writer, next(self._numbers))
        task = asyncio.get_running_loop().create_task(connection.run(), name=connection.name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def serve_rtmp(
    handler: PublishHandler,
    host: str,
    port: int,
    idle_timeout: float = 30.0,
    setup_timeout: float = 10.0,
) -> RtmpServer:
    """A started RtmpServer; `await server.stop()` ends it."""
    server = RtmpServer(handler, idle_timeout, setup_timeout)
    await server.start(host, port)
    return server
