"""WHEP at an edge that is not the ingest edge: one feed link from the ingest edge, shared by the
viewers there, continuous across a worker switch at the ingest edge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import pairwise
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from cluster.ops import make_app
from edge.playback.webrtc import routes
from edge.playback.webrtc.remote import RemoteFeeds
from edge.playback.webrtc.whep import Whep
from tests.conftest import await_for
from tests.edge.webrtc.conftest import Edge
from tests.edge.webrtc.worker import ScriptedWorker
from zoocast.harness.whep_viewer import WhepError, WhepViewer


@pytest.fixture
async def other_edge(
    edge: Edge, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> AsyncIterator[tuple[RemoteFeeds, Whep, str]]:
    async def locate(stream: str) -> str | None:
        return f"127.0.0.1:{edge.media_port}"  # the ingest edge, as its publisher znode says

    remote = RemoteFeeds(locate, "edge-2", linger=0.5)
    whep = Whep(remote.get)
    app: Any = make_app()
    routes.add_routes(app, whep)
    server = await aiohttp_server(app)
    yield remote, whep, str(server.make_url("/whep/"))
    await whep.close_all()
    await remote.close_all()


async def test_viewers_at_another_edge_share_one_link_and_survive_a_worker_switch(
    edge: Edge, other_edge: tuple[RemoteFeeds, Whep, str]
) -> None:
    remote, _, url = other_edge
    first = await ScriptedWorker(edge.media_port, "s1", 1, "t1", pts_base_us=50_000_000).start()
    viewers = [await WhepViewer(url + "s1").start() for _ in range(3)]
    pcs = [v.pc for v in viewers]
    second: ScriptedWorker | None = None
    try:
        await await_for(
            lambda: all(len(v.readable()) >= 5 for v in viewers), "frames at 3 viewers", 20
        )
        assert len(edge.relay.feed.taps) == 1 and len(remote.feeds) == 1
        assert not edge.relay.feed.viewers  # the ingest edge itself has no viewer
        first.kill()
        await await_for(lambda: edge.broken == [1], "the broken-link report")
        switched = time.time()
        second = await ScriptedWorker(edge.media_port, "s1", 2, "t2", pts_base_us=0).start()
        await await_for(
            lambda: all(
                sum(bool(r.capture and r.capture > switched) for r in v.records) >= 5
                for v in viewers
            ),
            "frames from the second worker at the other edge's viewers",
            20,
        )
        for v, pc in zip(viewers, pcs, strict=True):
            assert v.pc is pc and pc.connectionState == "connected"
            assert all(b > a for a, b in pairwise(v.rtp_timestamps))
        assert len(edge.relay.feed.taps) == 1  # still the one link
    finally:
        await asyncio.gather(*(v.stop() for v in viewers))
        await first.stop()
        if second is not None:
            await second.stop()
    # The last viewer left: the link goes after `linger`.
    await await_for(lambda: not edge.relay.feed.taps and not remote.feeds, "the link to close")


async def test_stream_end_at_the_ingest_edge_ends_viewers_elsewhere(
    edge: Edge, other_edge: tuple[RemoteFeeds, Whep, str]
) -> None:
    remote, whep, url = other_edge
    worker = await ScriptedWorker(edge.media_port, "s1", 1).start()
    viewer = await WhepViewer(url + "s1").start()
    try:
        await await_for(lambda: len(viewer.readable()) >= 3, "frames at the viewer", 20)
        edge.relay.end("publisher left")
        await await_for(lambda: not whep.sessions and not remote.feeds, "the sessions to end")
    finally:
        await viewer.stop()
        await worker.stop()
    with pytest.raises(WhepError, match="404"):
        await WhepViewer(url + "s1").start()  # not live there any more
    with pytest.raises(WhepError, match="404"):
        await WhepViewer(url + "other").start()  # never published there
