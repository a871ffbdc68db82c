"""HLS over HTTP: playlists rendered from Redis on each request, init segments and segments as bytes."""

from __future__ import annotations

import redis.asyncio
from aiohttp import web

from cluster.errors import BadRequest, NotFound
from cluster.hot import keys
from cluster.hot.model import SegmentEntry, renditions_from_json
from cluster.ids import rendition_id, stream_id
from edge.playback.hls.playlist import media, multivariant

REDIS = web.AppKey("hls_redis", redis.asyncio.Redis)
WINDOW = web.AppKey("hls_window", int)

PLAYLIST = "application/vnd.apple.mpegurl"
# Live playlists change every segment; segments never change once written.
PLAYLIST_CACHE = "max-age=1"
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
    client = request.app[REDIS]
    window = request.app[WINDOW]
    async with client.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.index(stream, rendition), -window, -1)
        pipe.hget(keys.state(stream, rendition), "disc")
        raw_entries, disc = await pipe.execute()
    if not raw_entries:
        raise NotFound(f"no segments for {stream}/{rendition} yet")
    entries = [SegmentEntry.from_json(x) for x in raw_entries]
    body = media(entries, int(disc or 0))
    return web.Response(text=body, content_type=PLAYLIST, headers={"Cache-Control": PLAYLIST_CACHE})


async def get_init(request: web.Request) -> web.Response:
    stream, rendition = _ids(request)
    epoch = _int(request.match_info["epoch"], "epoch")
    data = await request.app[REDIS].get(keys.init(stream, rendition, epoch))
    if data is None:
        raise NotFound(f"no init segment {rendition}/{epoch} for {stream}")
    return web.Response(
        body=data, content_type="video/mp4", headers={"Cache-Control": SEGMENT_CACHE}
    )


async def get_segment(request: web.Request) -> web.Response:
    stream, rendition = _ids(request)
    msn = _int(request.match_info["msn"], "media sequence number")
    data = await request.app[REDIS].get(keys.segment(stream, rendition, msn))
    if data is None:
        raise NotFound(
            f"segment {msn} of {stream}/{rendition} does not exist (expired or not yet written)"
        )
    return web.Response(
        body=data, content_type="video/iso.segment", headers={"Cache-Control": SEGMENT_CACHE}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hls/{stream}/index.m3u8", get_multivariant)
    app.router.add_get("/hls/{stream}/{rendition}/index.m3u8", get_media)
    app.router.add_get("/hls/{stream}/{rendition}/init/{epoch}.mp4", get_init)
    app.router.add_get("/hls/{stream}/{rendition}/{msn}.m4s", get_segment)
