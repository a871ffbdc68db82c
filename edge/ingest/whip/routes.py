"""WHIP over HTTP (RFC 9725): POST an offer, get 201 + Location + answer; DELETE the Location to stop.

No trickle ICE: the answer carries every candidate, so PATCH gets 405 (which the RFC allows, and
OBS does not send). Session URLs are built by `session_path` only, so that a redirect to another
edge, if one is ever emitted, has one place to change.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from cluster.errors import Unauthorized, UnsupportedMedia
from cluster.ids import stream_id
from cluster.ops import error_response
from edge.api.context import read_body
from edge.ingest.whip.offer import MAX_OFFER
from edge.ingest.whip.server import WhipIngest

WHIP = web.AppKey("whip", WhipIngest)
SDP = "application/sdp"


def session_path(stream: str, session_id: str) -> str:
    return f"/whip/{stream}/{session_id}"


# A browser page on another origin may publish: the key is a bearer token, not a cookie, so any
# origin may send it; the client must be able to read Location.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Location",
}


def add_routes(app: web.Application, ingest: WhipIngest) -> None:
    app[WHIP] = ingest
    app.router.add_post("/whip/{stream}", _post)
    app.router.add_delete("/whip/{stream}/{session}", _delete)
    app.router.add_patch("/whip/{stream}/{session}", _patch)
    app.router.add_route("OPTIONS", "/whip/{stream}", _options)
    app.router.add_route("OPTIONS", "/whip/{stream}/{session}", _options)
    app.on_response_prepare.append(_cors)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    # Errors too (they come from the shared middleware): a browser shows them only with these.
    if request.path.startswith("/whip/"):
        response.headers.update(CORS)


async def _options(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _read_offer(request: web.Request) -> bytes:
    return await read_body(request, MAX_OFFER)


def _bearer(request: web.Request) -> str:
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if not hmac.compare_digest(scheme.lower(), "bearer") or not token.strip():
        raise Unauthorized("the stream key is required as Authorization: Bearer KEY")
    return token.strip()


async def _post(request: web.Request) -> web.Response:
    key = _bearer(request)
    if request.content_type != SDP:
        raise UnsupportedMedia(f"a WHIP offer is {SDP}, not {request.content_type or 'untyped'}")
    body = await _read_offer(request)
    stream = request.match_info["stream"]
    session = await request.app[WHIP].publish(stream, key, body, request.remote or "?")
    return web.Response(
        status=201,
        body=session.answer.encode(),
        headers={"Content-Type": SDP, "Location": session_path(session.stream, session.id)},
    )


async def _delete(request: web.Request) -> web.Response:
    key = _bearer(request)
    ingest = request.app[WHIP]
    stream = stream_id(request.match_info["stream"])
    await ingest.publishing.registry.check_key(stream, key)
    session = ingest.get(stream, request.match_info["session"])
    await session.close("the publisher sent DELETE")
    return web.Response(status=200)


async def _patch(request: web.Request) -> web.Response:
    resp = error_response(
        405,
        "method_not_allowed",
        "trickle ICE is not supported: send every candidate in the offer (or none)",
    )
    resp.headers["Allow"] = "DELETE"
    return resp
