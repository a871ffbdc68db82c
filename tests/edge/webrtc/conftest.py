"""An edge's media-link server and WHEP routes in this process, fed by scripted workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from cluster.ops import make_app
from edge.playback.webrtc import routes
from edge.playback.webrtc.feed import Feed
from edge.playback.webrtc.whep import Whep
from edge.relay.gop import GopCache
from edge.relay.hub import StreamRelay
from edge.relay.server import LinkServer


@dataclass
class Edge:
    relay: StreamRelay
    link: LinkServer
    media_port: int
    whep: Whep
    url: str
    broken: list[int] = field(default_factory=list)


@pytest.fixture
async def edge(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> AsyncIterator[Edge]:
    """Stream s1 published here; a test may replace `edge.relay` (a new publish session)."""
    broken: list[int] = []
    holder: list[Edge] = []
    link = LinkServer(lambda s: holder[0].relay if s == "s1" else None)
    port = await link.start("127.0.0.1", 0)

    async def feeds(stream: str) -> Feed | None:
        return holder[0].relay.feed if stream == "s1" else None

    whep = Whep(feeds)
    app: Any = make_app()
    routes.add_routes(app, whep)
    server = await aiohttp_server(app)
    relay = StreamRelay("s1", GopCache(1 << 20, 10), broken.append)
    holder.append(Edge(relay, link, port, whep, str(server.make_url("/whep/s1")), broken))
    yield holder[0]
    await whep.close_all()
    await link.stop()
