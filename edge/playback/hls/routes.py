"""HLS over aiohttp: the routes, each answered by the service (service.py).

The fast path (fast.py) answers the same routes on the same port without aiohttp's request
machinery; these handlers serve what it hands over (HTTP/1.0, percent-escaped paths, requests
after a foreign one on the same connection) and the tests that drive the app directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio
from aiohttp import web

from edge.playback.hls.cache import BlobCache
from edge.playback.hls.events import Events
from edge.playback.hls.live import LiveRenditions
from edge.playback.hls.service import HlsService
from edge.playback.hls.wire import Kind, Target

REDIS = web.AppKey("hls_redis", redis.asyncio.Redis)
WINDOW = web.AppKey("hls_window", int)
EVENTS = web.AppKey("hls_events", Events)
CACHE = web.AppKey("hls_cache", BlobCache)
LIVE = web.AppKey("hls_live", LiveRenditions)
SERVICE = web.AppKey("hls_service", HlsService)

CACHE_BYTES = 256 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _handler(kind: Kind) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        m = request.match_info
        target = Target(
            kind,
            m["stream"],
            m.get("rendition", ""),
            m.get("epoch", ""),
            m.get("msn", ""),
            m.get("part", ""),
        )
        reply = await request.app[SERVICE].answer(target, dict(request.query))
        return web.Response(
            body=reply.body,
            headers={"Content-Type": reply.content_type, "Cache-Control": reply.cache},
        )

    return handle


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    events = Events(app[REDIS])
    app[EVENTS] = events
    app[CACHE] = BlobCache(CACHE_BYTES)
    app[LIVE] = LiveRenditions(app[REDIS], app[WINDOW], events)
    app[SERVICE] = HlsService(app[REDIS], events, app[CACHE], app[LIVE])
    await events.start()
    yield
    await events.stop()


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_lifecycle)
    get = app.router.add_get
    get("/hls/{stream}/index.m3u8", _handler(Kind.MULTIVARIANT))
    get("/hls/{stream}/{rendition}/index.m3u8", _handler(Kind.MEDIA))
    get("/hls/{stream}/{rendition}/init/{epoch}.mp4", _handler(Kind.INIT))
    get(r"/hls/{stream}/{rendition}/part/{epoch}/{msn:\d+}.{part:\d+}.m4s", _handler(Kind.PART))
    get("/hls/{stream}/{rendition}/{msn}.m4s", _handler(Kind.SEGMENT))
