"""The edge's HTTP surface: routes and ready checks (`build_http_app`, which tests drive
directly), and how the edge serves them (`serve`: aiohttp behind the HLS fast path)."""

from __future__ import annotations

from aiohttp import web

from cluster.ops import READY_CHECKS, make_app
from edge.api import nodes, streams
from edge.api.context import API, ApiContext
from edge.playback.hls import routes as hls
from edge.playback.hls.fast import HlsSite
from edge.playback.webrtc import routes as whep
from edge.playback.webrtc.whep import FeedLookup, Whep, no_feeds


def build_http_app(ctx: ApiContext, feeds: FeedLookup = no_feeds) -> web.Application:
    app = make_app(client_max_size=64 * 1024)
    app[API] = ctx
    app[hls.REDIS] = ctx.redis
    app[hls.WINDOW] = ctx.settings.hls_window
    hls.add_routes(app)
    whep.add_routes(app, Whep(feeds, ctx.settings.stun_list, ctx.settings.whep_connect_timeout))
    streams.add_routes(app)
    nodes.add_routes(app)
    app[READY_CHECKS].append(
        lambda: None if ctx.zk.connected else f"ZooKeeper session {ctx.zk.state.value}"
    )
    return app


async def serve(app: web.Application, host: str | None, port: int) -> web.AppRunner:
    """Serve `app` (with the HLS routes) on one port: HLS GETs by the fast path
    (edge/playback/hls/fast.py), everything else by aiohttp. `runner.cleanup()` stops it."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await HlsSite(runner, host, port).start()
    return runner
