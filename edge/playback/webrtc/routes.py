"""WHEP over HTTP (draft-ietf-wish-whep): POST an offer, get 201 + Location + answer; DELETE ends it."""

from __future__ import annotations

from aiohttp import web

from cluster.errors import UnsupportedMedia
from cluster.ids import stream_id
from edge.api.context import read_body
from edge.playback.webrtc.whep import Whep

WHEP = web.AppKey("whep", Whep)
SDP = "application/sdp"
MAX_OFFER = 32 * 1024  # real offers are a few KB; more is not an offer


async def post_offer(request: web.Request) -> web.Response:
    stream = stream_id(request.match_info["stream"])
    if request.content_type != SDP:
        raise UnsupportedMedia(f"send the offer as {SDP}, not {request.content_type}")
    raw = await read_body(request, MAX_OFFER)
    session, answer = await request.app[WHEP].create(stream, raw.decode(errors="replace"))
    return web.Response(
        status=201,
        text=answer,
        content_type=SDP,
        headers={"Location": f"/whep/{stream}/{session.id}"},
    )


async def delete_session(request: web.Request) -> web.Response:
    stream = stream_id(request.match_info["stream"])
    whep = request.app[WHEP]
    await whep.close(whep.get(stream, request.match_info["session"]), "DELETE")
    return web.Response(status=200)


async def patch_session(request: web.Request) -> web.Response:
    # Trickle ICE and ICE restarts are optional in WHEP; the answer already carries candidates.
    raise web.HTTPMethodNotAllowed("PATCH", ["DELETE"])


def add_routes(app: web.Application, whep: Whep) -> None:
    app[WHEP] = whep

    async def close_sessions(_: web.Application) -> None:
        await whep.close_all()

    app.on_shutdown.append(close_sessions)
    app.router.add_post("/whep/{stream}", post_offer)
    app.router.add_delete("/whep/{stream}/{session}", delete_session)
    app.router.add_patch("/whep/{stream}/{session}", patch_session)
