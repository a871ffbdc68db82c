"""`/api/streams`: the stream registry, each stream's placement and its recent moves."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cluster.errors import BadRequest
from cluster.hot import keys
from cluster.hot.model import renditions_from_json
from cluster.ids import stream_id
from cluster.ladder import Ladder, resolve
from cluster.registry import StreamView
from edge.api.context import API, json_body, require_admin


def _urls(request: web.Request, stream: str) -> dict[str, str]:
    s = request.app[API].settings
    return {
        "hls": f"{s.http_url}/hls/{stream}/index.m3u8",
        "rtmp": f"rtmp://{s.host}:{s.rtmp_port}/live/{stream}",
    }


def _ladder(v: StreamView) -> dict[str, Any] | None:
    """The ladder the stream is encoded with (a record too new to read shows as None)."""
    try:
        return resolve(v.record.profile, v.record.ladder).to_spec()
    except BadRequest:
        return None


def _view(request: web.Request, v: StreamView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "stream": v.stream,
        "created_at": v.record.created_at,
        "profile": v.record.profile,
        "ladder": _ladder(v),
        "live": v.publisher is not None,
        "urls": _urls(request, v.stream),
        "publisher": None,
        "placement": None,
    }
    if v.publisher:
        p = v.publisher
        body["publisher"] = {
            "edge": p.edge,
            "protocol": p.protocol,
            "codecs": p.codecs,
            "since": p.since,
        }
    if v.placement:
        pl = v.placement
        body["placement"] = {
            "transcoder": pl.transcoder,
            "epoch": pl.epoch,
            "state": pl.state,
            "reason": pl.reason,
            "updated_at": pl.updated_at,
            "moves": [m.__dict__ for m in pl.history],
        }
    return body


async def list_streams(request: web.Request) -> web.Response:
    reg = request.app[API].registry
    names = await reg.list()
    views = await asyncio.gather(*(reg.view(n) for n in names), return_exceptions=True)
    out = [_view(request, v) for v in views if isinstance(v, StreamView)]
    return web.json_response({"streams": out})


async def get_stream(request: web.Request) -> web.Response:
    ctx = request.app[API]
    stream = stream_id(request.match_info["stream"])
    body = _view(request, await ctx.registry.view(stream))
    raw = await ctx.redis.get(keys.renditions(stream))
    body["renditions"] = [r.to_dict() for r in renditions_from_json(raw)] if raw else []
    return web.json_response(body)


async def create_stream(request: web.Request) -> web.Response:
    require_admin(request)
    ctx = request.app[API]
    body = await json_body(request)
    stream = stream_id(str(body.get("stream", "")))
    profile = body.get("profile", ctx.settings.ladder)
    if not isinstance(profile, str):
        raise BadRequest("profile must be a string")
    # A ladder of its own (validated here, at the boundary), or a built-in profile by name.
    custom = Ladder.from_spec(body["ladder"]) if "ladder" in body else None
    # A stream of this id may have existed: its writer epoch (kept in Redis when it was deleted)
    # is where the new one's epochs start, so none of its URLs comes back with other bytes.
    base = int(await ctx.redis.get(keys.epoch(stream)) or 0)
    key = await ctx.registry.create(stream, profile, custom, epoch_base=base)
    profile = custom.name if custom else profile
    urls = _urls(request, stream)
    return web.json_response(
        {
            "stream": stream,
            "key": key,
            "profile": profile,
            "rtmp_url": f"{urls['rtmp']}?key={key}",
            "obs": {"server": urls["rtmp"].rsplit("/", 1)[0], "stream_key": f"{stream}?key={key}"},
            "hls_url": urls["hls"],
        },
        status=201,
    )


async def delete_stream(request: web.Request) -> web.Response:
    require_admin(request)
    ctx = request.app[API]
    stream = stream_id(request.match_info["stream"])
    await ctx.registry.delete(stream)
    # Hot data of a deleted stream would otherwise linger until each key's TTL.
    # The writer epoch and the renditions' state stay: a stream created again under this id
    # continues both, so its URLs never name the old stream's bytes (edge and CDN caches).
    keep = {keys.epoch(stream).encode()}
    stale = [
        k
        async for k in ctx.redis.scan_iter(match=keys.stream_pattern(stream), count=500)
        if k not in keep and not k.endswith(b":state")
    ]
    if stale:
        await ctx.redis.delete(*stale)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/streams", list_streams)
    app.router.add_post("/api/streams", create_stream)
    app.router.add_get("/api/streams/{stream}", get_stream)
    app.router.add_delete("/api/streams/{stream}", delete_stream)
