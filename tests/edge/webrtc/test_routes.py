"""WHEP over HTTP through the edge's real app (build_http_app) on a real ZooKeeper and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCRtpSender

from cluster.config import Settings
from cluster.paths import Paths
from cluster.registry import Registry
from cluster.webrtc.ice import announce_hosts, configuration
from cluster.zk.bridge import ZkBridge
from edge.api.context import ApiContext
from edge.http import build_http_app
from edge.playback.webrtc.feed import Feed
from edge.playback.webrtc.routes import WHEP
from edge.relay.gop import GopCache
from edge.relay.hub import StreamRelay
from tests.conftest import await_for
from zoocast.local.servers import RedisServer, ZooKeeperServer

Client = TestClient[web.Request, web.Application]
SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def client(
    zk_server: ZooKeeperServer,
    zk_root: str,
    redis_async: redis.asyncio.Redis,
    redis_server: RedisServer,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> AsyncIterator[Client]:
    zk = ZkBridge(zk_server.hosts, Paths(zk_root), session_timeout=2.0)
    await zk.start()
    live = StreamRelay("live", GopCache(1 << 20, 10), lambda epoch: None)
    ended = StreamRelay("ended", GopCache(1 << 20, 10), lambda epoch: None)
    ended.end("publisher left")
    relays = {"live": live, "ended": ended}

    async def feeds(stream: str) -> Feed | None:
        relay = relays.get(stream)
        return relay.feed if relay else None

    settings = Settings(node_id="edge-t", redis=redis_server.url)
    ctx = ApiContext(settings, zk, zk.paths, redis_async, Registry(zk, zk.paths))
    announce_hosts(["127.0.0.1"])
    yield await aiohttp_client(build_http_app(ctx, feeds))
    await zk.stop()


async def _offer(video_mime: str = "video/H264") -> str:
    pc = RTCPeerConnection(configuration())
    video = pc.addTransceiver("video", direction="recvonly")
    video.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == video_mime]
    )
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


async def test_offer_is_answered_with_h264_opus_and_candidates(client: Client) -> None:
    resp = await client.post("/whep/live", data=await _offer(), headers=SDP)
    answer = await resp.text()
    assert resp.status == 201, answer
    assert resp.content_type == "application/sdp"
    location = resp.headers["Location"]
    assert location.startswith("/whep/live/")
    assert "H264/90000" in answer and "opus/48000/2" in answer
    assert "VP8" not in answer and "PCMU" not in answer
    assert "a=sendonly" in answer
    assert "a=candidate:" in answer and "127.0.0.1" in answer  # complete: no trickle
    whep = client.app[WHEP]
    feed = whep.sessions[location.rsplit("/", 1)[1]].feed
    assert len(feed.viewers) == 1
    assert (await client.patch(location, data="", headers=SDP)).status == 405
    assert (await client.delete(location)).status == 200
    assert not whep.sessions and not feed.viewers
    assert (await client.delete(location)).status == 404


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/whep/live", "v=0\r\n", {"Content-Type": "text/plain"}, 415),
        ("/whep/live", "hello", SDP, 400),
        ("/whep/live", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", SDP, 400),
        ("/whep/live", "v=0\r\n" + "a=x\r\n" * 10_000, SDP, 413),
        ("/whep/bad%20id", "v=0\r\n", SDP, 400),
    ],
)
async def test_bad_requests(
    client: Client, path: str, body: str, headers: dict[str, str], status: int
) -> None:
    resp = await client.post(path, data=body, headers=headers)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]


@pytest.mark.parametrize("stream", ["nobody", "ended"])
async def test_unknown_or_ended_stream_is_404(client: Client, stream: str) -> None:
    resp = await client.post(f"/whep/{stream}", data=await _offer(), headers=SDP)
    assert resp.status == 404, await resp.text()
    assert not client.app[WHEP].sessions


async def test_offer_without_h264_is_400(client: Client) -> None:
    resp = await client.post("/whep/live", data=await _offer("video/VP8"), headers=SDP)
    assert resp.status == 400, await resp.text()
    assert "H.264" in (await resp.json())["detail"]
    assert not client.app[WHEP].sessions


async def test_a_session_that_never_connects_is_closed(client: Client) -> None:
    whep = client.app[WHEP]
    whep.connect_timeout = 0.5
    resp = await client.post("/whep/live", data=await _offer(), headers=SDP)
    assert resp.status == 201, await resp.text()
    assert len(whep.sessions) == 1
    # The offering peer connection is closed already: nobody answers the edge's ICE checks.
    await await_for(lambda: not whep.sessions, "the unconnected session to close")


async def test_an_offer_sent_in_pieces_is_read_whole(client: Client) -> None:
    offer = (await _offer()).encode()

    async def pieces():  # type: ignore[no-untyped-def]
        for i in range(0, len(offer), 300):  # no Content-Length; several reads on the server
            yield offer[i : i + 300]
            await asyncio.sleep(0.01)

    resp = await client.post("/whep/live", data=pieces(), headers=SDP)
    assert resp.status == 201, await resp.text()
    assert (await client.delete(resp.headers["Location"])).status == 200
