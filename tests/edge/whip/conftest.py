"""An edge's HTTP app with WHIP routes, on a real ZooKeeper, with a stand-in coordinator that
places every new publisher (what the leader does, minus the choice of a transcoder)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio
from aiohttp.test_utils import TestClient

from cluster.config import Settings
from cluster.errors import ZkNoNode
from cluster.paths import Paths
from cluster.payloads import Placement, Publisher
from cluster.registry import Registry
from cluster.webrtc.ice import announce_hosts
from cluster.zk.bridge import ZkBridge
from edge.api.context import ApiContext
from edge.http import build_http_app
from edge.ingest.whip import routes
from edge.ingest.whip.server import WhipIngest
from edge.relay.publish import Publishing
from zoocast.local.servers import RedisServer, ZooKeeperServer

Client = TestClient  # type: ignore[type-arg]


@dataclass
class Edge:
    client: Client
    publishing: Publishing
    ingest: WhipIngest
    registry: Registry

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))


@pytest.fixture
async def zk(zk_server: ZooKeeperServer, zk_root: str) -> AsyncIterator[ZkBridge]:
    bridge = ZkBridge(zk_server.hosts, Paths(zk_root), session_timeout=2.0)
    await bridge.start()
    yield bridge
    await bridge.stop()


async def _place_publishers(zk: ZkBridge) -> None:
    placed: dict[str, str] = {}  # stream -> publisher session already placed
    while True:
        try:
            streams = await zk.children(zk.paths.streams)
        except ZkNoNode:
            streams = []
        for stream in streams:
            got = await zk.get(zk.paths.publisher(stream))
            if got is None or placed.get(stream) == Publisher.parse(got[0]).session:
                continue
            path = zk.paths.placement(stream)
            current = await zk.get(path)
            epoch = Placement.parse(current[0]).epoch + 1 if current else 1
            data = bytes(Placement("t1", epoch, "placed", "placed by the test"))
            try:
                await zk.set(path, data)
            except ZkNoNode:
                await zk.create(path, data)
            placed[stream] = Publisher.parse(got[0]).session
        await asyncio.sleep(0.05)


@pytest.fixture
async def edge(
    zk: ZkBridge,
    redis_async: redis.asyncio.Redis,
    redis_server: RedisServer,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> AsyncIterator[Edge]:
    settings = Settings(
        node_id="edge-w",
        redis=redis_server.url,
        placement_wait=5.0,
        whip_connect_timeout=5.0,
        whip_idle_timeout=2.0,
    )
    announce_hosts(settings.webrtc_host_list)  # as EdgeNode.start does
    registry = Registry(zk, zk.paths)
    publishing = Publishing(settings, zk, zk.paths, lambda: None)
    ingest = WhipIngest(settings, publishing)
    app = build_http_app(ApiContext(settings, zk, zk.paths, redis_async, registry))
    routes.add_routes(app, ingest)
    placer = asyncio.get_running_loop().create_task(_place_publishers(zk))
    try:
        yield Edge(await aiohttp_client(app), publishing, ingest, registry)
    finally:
        placer.cancel()
        await ingest.stop()
        await publishing.stop()
