"""The HLS fast path: an asyncio Protocol in front of aiohttp on the edge's HTTP port.

Every connection starts here. Requests that `wire.parse` says are ours (plain GET/HEAD of an HLS
route) are answered from the service (service.py) without aiohttp's request objects, routing
and middleware: at once when the answer is in memory (`answer_now`: a cached object, a fresh
playlist snapshot), else from one task per connection (Redis reads, blocking reloads), while
later pipelined requests wait their turn so answers keep their order. The first request that is
not ours hands the connection to aiohttp for good: a fresh aiohttp protocol takes over the
transport and is fed the bytes already read from that request on, so aiohttp sees exactly what
it would have seen. Errors are the same JSON as cluster.ops' middleware writes.

Memory per connection stays bounded: reading pauses while the socket's send buffer is full or
the unparsed bytes pass `MAX_BUFFER`, and a connection idle for `KEEPALIVE` (as aiohttp's
keep-alive timeout) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from typing import cast

from aiohttp import web

from cluster.errors import ZoocastError
from edge.playback.hls import wire
from edge.playback.hls.routes import SERVICE
from edge.playback.hls.service import HlsService

log = logging.getLogger(__name__)

MAX_BUFFER = 64 * 1024  # unparsed bytes a connection may hold while its answers wait
KEEPALIVE = 75.0  # seconds without a request before an idle connection is closed (aiohttp's)
SWEEP = 15.0


def _error(status: int, code: str, detail: str, req: wire.Request) -> bytes:
    body = json.dumps({"error": code, "detail": detail}).encode()
    out = wire.head(status, "application/json; charset=utf-8", len(body), None)
    out += wire.tail(req.keep_alive)
    return out if req.head else out + body


class FastHls(asyncio.Protocol):
    def __init__(
        self, service: HlsService, server: web.Server, conns: set[FastHls], served: list[int]
    ) -> None:
        self.service = service
        self.server = server
        self.conns = conns
        self.served = served
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.pos = 0  # where the next request starts in buf
        self.task: asyncio.Task[None] | None = None  # the answer being waited for
        self.write_paused = False
        self.read_paused = False
        # Sweeps since the last whole request (bytes of an unfinished head do not count, so a
        # head dripped in a byte at a time cannot hold the connection), or since an answer
        # being sent last made progress.
        self.idle = 0
        self.backlog = 0  # the send buffer at the last sweep

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # as aiohttp does: answers are one write each
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conns.discard(self)
        self.transport = None
        self.buf = b""
        if self.task is not None:
            # A held request whose client went away stops waiting (and frees its waiter).
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.pos < len(self.buf):
            # Rare (a head split across reads, or requests queued behind a held one); the
            # leftover is at most MAX_BUFFER plus one read.
            data = bytes(self.buf[self.pos :]) + data
        self.buf, self.pos = data, 0
        self._serve()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._serve()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _serve(self) -> None:
        """Answer the requests in the buffer, in order, until one has to wait."""
        transport = self.transport
        while transport is not None and not transport.is_closing():
            if self.task is not None or self.write_paused:
                if self.write_paused or len(self.buf) - self.pos > MAX_BUFFER:
                    self._pause_reading()
                return
            buf, pos = self.buf, self.pos
            if pos >= len(buf):
                self._resume_reading()
                return
            req = wire.parse(buf, pos)
            if req is wire.NEED_MORE:
                self._resume_reading()  # a head is at most wire.MAX_HEAD bytes
                return
            if req is wire.FOREIGN:
                self._hand_over(bytes(buf[pos:]))
                return
            assert isinstance(req, wire.Request)
            self.pos = req.end
            self.idle = 0
            self.served[0] += 1
            try:
                reply = self.service.answer_now(req.target, req.query)
            except ZoocastError as exc:
                transport.write(_error(exc.status, exc.code, exc.detail, req))
            except Exception:
                self._crashed(req)
            else:
                if reply is None:
                    self.task = asyncio.ensure_future(self._later(req))
                    continue
                self._send(transport, req, reply)
            if not req.keep_alive:
                transport.close()

    def _send(self, transport: asyncio.Transport, req: wire.Request, reply: wire.Reply) -> None:
        body = reply.body
        out = wire.head(200, reply.content_type, len(body), reply.cache) + wire.tail(req.keep_alive)
        if req.head:
            transport.write(out)
        elif len(body) < 16 * 1024:
            transport.write(out + body)
        else:
            # No copy of the body where the loop writes vectors (uvloop); asyncio's 3.11
            # transports join them.
            transport.writelines((out, body))

    async def _later(self, req: wire.Request) -> None:
        try:
            reply = await self.service.answer(req.target, req.query)
        except ZoocastError as exc:
            self._write(_error(exc.status, exc.code, exc.detail, req))
        except Exception:
            self._crashed(req)
        else:
            if self.transport is not None and not self.transport.is_closing():
                self._send(self.transport, req, reply)
        finally:
            self.task = None
        if self.transport is not None:
            if not req.keep_alive:
                self.transport.close()
            else:
                self._serve()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _crashed(self, req: wire.Request) -> None:
        log.exception("unhandled error on %s %s", "HEAD" if req.head else "GET", req.target)
        self._write(_error(500, "internal", "unexpected server error; see the server log", req))

    def _hand_over(self, data: bytes) -> None:
        """aiohttp serves the rest of this connection, starting with these bytes."""
        transport = self.transport
        assert transport is not None
        self.conns.discard(self)
        self.transport, self.buf = None, b""
        proto = self.server()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if self.read_paused:
            transport.resume_reading()
        if data:
            proto.data_received(data)

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()


class HlsSite(web.TCPSite):
    """A TCPSite whose connections start on the fast path (the app must have the HLS routes)."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str | None,
        port: int,
        reuse_port: bool | None = None,
        keepalive: float = KEEPALIVE,
        sweep: float = SWEEP,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self._app = runner.app
        self._keepalive, self._sweep_every = keepalive, sweep
        self._conns: set[FastHls] = set()
        self._served = [0]  # requests the fast path answered itself (shared by its connections)
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        service = self._app[SERVICE]
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: FastHls(service, server, self._conns, self._served),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
        self._sweeper = asyncio.create_task(self._sweep(), name="hls fast path keep-alive")

    async def stop(self) -> None:
        await super().stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for conn in list(self._conns):
            conn.close()

    @property
    def served(self) -> int:
        """Requests answered on the fast path, not by aiohttp."""
        return self._served[0]

    @property
    def connections(self) -> int:
        """Connections on the fast path now (the ones handed over are aiohttp's)."""
        return len(self._conns)

    async def _sweep(self) -> None:
        limit = max(1, round(self._keepalive / self._sweep_every))
        while True:
            await asyncio.sleep(self._sweep_every)
            for conn in list(self._conns):
                if conn.task is not None:
                    conn.idle = 0  # a held request: its own hold limit ends it
                    continue
                backlog = conn.transport.get_write_buffer_size() if conn.transport else 0
                if backlog and backlog < conn.backlog:
                    conn.idle = 0  # a slow reader still taking its answer
                conn.backlog = backlog
                conn.idle += 1
                if conn.idle >= limit:
                    conn.close()
