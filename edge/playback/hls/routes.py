"""HLS over HTTP: LL-HLS playlists from shared snapshots (live.py), media objects from the cache.

Blocking reloads (`_HLS_msn`, `_HLS_part`) and preload-hinted parts are held until Redis
announces what they wait for (edge/playback/hls/events.py), at most three target durations,
then answered 503 (playlists) or 404 (parts). Every media object is immutable once written, so
it is read from Redis once per edge and served from memory after that.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio
from aiohttp import web

from cluster.errors import BadRequest, NotFound, Unavailable
from cluster.hot import keys
from cluster.hot.model import renditions_from_json
from cluster.ids import rendition_id, stream_id
from edge.playback.hls import blocking
from edge.playback.hls.cache import BlobCache
from edge.playback.hls.events import Events
from edge.playback.hls.live import LiveRenditions, Snapshot
from edge.playback.hls.playlist import multivariant
from edge.playback.hls.view import RenditionView

REDIS = web.AppKey("hls_redis", redis.asyncio.Redis)
WINDOW = web.AppKey("hls_window", int)
EVENTS = web.AppKey("hls_events", Events)
CACHE = web.AppKey("hls_cache", BlobCache)
LIVE = web.AppKey("hls_live", LiveRenditions)

CACHE_BYTES = 256 * 1024 * 1024
HOLD_TARGETS = 3  # RFC 8216bis: a blocked request is answered within three target durations
PLAYLIST = "application/vnd.apple.mpegurl"
# A plain live playlist changes with every part; a blocked one answers a URL that names the
# state it waited for, so a cache in front may keep it; media objects never change.
PLAYLIST_CACHE = "max-age=1"
BLOCKED_PLAYLIST_CACHE = "max-age=30"
SEGMENT_CACHE = "max-age=300, immutable"


def _ids(request: web.Request) -> tuple[str, str]:
    return stream_id(request.match_info["stream"]), rendition_id(request.match_info["rendition"])


def _int(raw: str, what: str) -> int:
    if not raw.isdigit() or len(raw) > 15:
        raise BadRequest(f"bad {what} {raw!r}")
    return int(raw)


async def get_multivariant(request: web.Request) -> web.Response:
    stream = stream_id(request.match_info["stream"])
    raw = await request.app[REDIS].get(keys.renditions(stream))
    if raw is None:
        raise NotFound(f"no HLS output for stream {stream} (not live, or not placed yet)")
    body = multivariant(renditions_from_json(raw))
    return web.Response(text=body, content_type=PLAYLIST, headers={"Cache-Control": PLAYLIST_CACHE})


async def get_media(request: web.Request) -> web.Response:
    stream, rendition = _ids(request)
    want = blocking.parse(dict(request.query))
    skip = request.query.get("_HLS_skip") in {"YES", "v2"}
    app = request.app
    if want is None:
        snap = await app[LIVE].snapshot(stream, rendition)
    else:
        snap = await _held(app, stream, rendition, want)
    if not snap.view.entries:
        raise NotFound(f"no segments for {stream}/{rendition} yet")
    cache = PLAYLIST_CACHE if want is None else BLOCKED_PLAYLIST_CACHE
    return web.Response(
        text=snap.playlist(rendition, skip),
        content_type=PLAYLIST,
        headers={"Cache-Control": cache},
    )


async def _held(
    app: web.Application, stream: str, rendition: str, want: blocking.Wanted
) -> Snapshot:
    """The rendition once it holds what `want` names; 400 if too far ahead, 503 if too slow."""
    events, channel = app[EVENTS], keys.events(stream, rendition)
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    while True:
        woken = await events.waiter(channel)  # before the read: nothing slips in between
        try:
            snap = await app[LIVE].snapshot(stream, rendition, events.generation(channel))
            view = snap.view
            if not view.entries and not view.open_parts:
                raise NotFound(f"no segments for {stream}/{rendition} yet")
            blocking.check(view.position, want)
            if blocking.ready(view.position, want):
                return snap
            if deadline is None:
                deadline = loop.time() + HOLD_TARGETS * _target(view)
            try:
                await asyncio.wait_for(woken, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise Unavailable(
                    f"{stream}/{rendition} did not reach segment {want.msn}"
                    + ("" if want.part is None else f" part {want.part}")
                    + " in time"
                ) from None
        finally:
            events.discard(channel, woken)


def _target(view: RenditionView) -> float:
    durations = [e.duration for e in view.entries] + [p.duration for p in view.open_parts]
    return float(max(1, math.ceil(max(durations, default=1.0))))


async def get_part(request: web.Request) -> web.Response:
    stream, rendition = _ids(request)
    epoch = _int(request.match_info["epoch"], "epoch")
    msn = _int(request.match_info["msn"], "media sequence number")
    index = _int(request.match_info["part"], "part index")
    key = keys.part(stream, rendition, epoch, msn, index)
    app = request.app
    data = await app[CACHE].get(key, _fetcher(app))
    if data is None:
        data = await _hinted(app, stream, rendition, epoch, msn, index, key)
    return web.Response(
        body=data, content_type="video/iso.segment", headers={"Cache-Control": SEGMENT_CACHE}
    )


async def _hinted(
    app: web.Application, stream: str, rendition: str, epoch: int, msn: int, index: int, key: str
) -> bytes:
    """A part named by a preload hint before it exists: hold until it is written, or 404 once
    it cannot be (its segment closed without it, another writer took over, time ran out)."""
    events, channel = app[EVENTS], keys.events(stream, rendition)
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    missing = NotFound(
        f"part {msn}.{index} of {stream}/{rendition} (writer {epoch}) does not exist"
    )
    while True:
        woken = await events.waiter(channel)
        try:
            data = await app[CACHE].get(key, _fetcher(app))
            if data is not None:
                return data
            view = (await app[LIVE].snapshot(stream, rendition, events.generation(channel))).view
            pos = view.position
            if view.writer_epoch != epoch or msn <= pos.last_msn or msn > pos.open_msn + 1:
                raise missing
            if deadline is None:
                deadline = loop.time() + HOLD_TARGETS * _target(view)
            try:
                await asyncio.wait_for(woken, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise missing from None
        finally:
            events.discard(channel, woken)


async def get_init(request: web.Request) -> web.Response:
    stream, rendition = _ids(request)
    epoch = _int(request.match_info["epoch"], "epoch")
    app = request.app
    data = await app[CACHE].get(keys.init(stream, rendition, epoch), _fetcher(app))
    if data is None:
        raise NotFound(f"no init segment {rendition}/{epoch} for {stream}")
    return web.Response(
        body=data, content_type="video/mp4", headers={"Cache-Control": SEGMENT_CACHE}
    )


async def get_segment(request: web.Request) -> web.Response:
    stream, rendition = _ids(request)
    msn = _int(request.match_info["msn"], "media sequence number")
    app = request.app
    data = await app[CACHE].get(keys.segment(stream, rendition, msn), _fetcher(app))
    if data is None:
        raise NotFound(
            f"segment {msn} of {stream}/{rendition} does not exist (expired or not yet written)"
        )
    return web.Response(
        body=data, content_type="video/iso.segment", headers={"Cache-Control": SEGMENT_CACHE}
    )


def _fetcher(app: web.Application) -> Callable[[str], Awaitable[bytes | None]]:
    client = app[REDIS]

    async def fetch(key: str) -> bytes | None:
        data = await client.get(key)
        return data if isinstance(data, bytes) else None

    return fetch


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    events = Events(app[REDIS])
    app[EVENTS] = events
    app[CACHE] = BlobCache(CACHE_BYTES)
    app[LIVE] = LiveRenditions(app[REDIS], app[WINDOW], events)
    await events.start()
    yield
    await events.stop()


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _redis_down_is_503(handler: Handler) -> Handler:
    """Redis away (restarting, unreachable, its pool exhausted) is 503, not a 500 with a
    traceback per request: players retry, and HLS resumes by itself when Redis is back."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise Unavailable(f"hot storage unavailable: {exc}") from None

    return wrapped


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_lifecycle)
    get = app.router.add_get
    get("/hls/{stream}/index.m3u8", _redis_down_is_503(get_multivariant))
    get("/hls/{stream}/{rendition}/index.m3u8", _redis_down_is_503(get_media))
    get("/hls/{stream}/{rendition}/init/{epoch}.mp4", _redis_down_is_503(get_init))
    get(
        r"/hls/{stream}/{rendition}/part/{epoch}/{msn:\d+}.{part:\d+}.m4s",
        _redis_down_is_503(get_part),
    )
    get("/hls/{stream}/{rendition}/{msn}.m4s", _redis_down_is_503(get_segment))
