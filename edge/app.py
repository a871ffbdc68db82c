"""The edge process: RTMP and WHIP ingest, the media-link server, HLS and the REST API, registered in ZooKeeper.

`EdgeNode` owns every resource of the process and tears them down in reverse order of start.
"""

from __future__ import annotations

import logging

import redis.asyncio
from aiohttp import web

from cluster.config import Settings
from cluster.ops import METRICS
from cluster.paths import Paths
from cluster.payloads import EdgeInfo
from cluster.registry import Registry
from cluster.runtime import wait_for_signal
from cluster.webrtc.ice import announce_hosts
from cluster.zk.bridge import ZkBridge
from cluster.zk.ephemeral import EphemeralNode
from edge.api.context import ApiContext
from edge.http import build_http_app, serve
from edge.ingest.rtmp.server import RtmpServer
from edge.ingest.whip import routes as whip
from edge.ingest.whip.server import WhipIngest
from edge.playback.webrtc.feed import Feed
from edge.playback.webrtc.remote import RemoteFeeds, locate_by_publisher
from edge.relay.publish import Publishing
from edge.relay.server import LinkServer

log = logging.getLogger(__name__)

REDIS_CONNECTIONS = 64
REDIS_POOL_WAIT = 5.0  # seconds a request waits for a Redis connection before it fails


class EdgeNode:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = Paths(settings.zk_root)
        self.zk = ZkBridge(
            settings.zk, self.paths, settings.session_timeout, settings.zk_backoff_cap
        )
        # A pool that queues: redis-py's default one raises past 100 concurrent commands, which
        # thousands of viewers woken by one LL-HLS part reach at once.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.redis, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_WAIT
        )
        self.redis = redis.asyncio.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self.publishing = Publishing(settings, self.zk, self.paths, self._changed)
        self.link = LinkServer(self.publishing.relay)
        self.whip = WhipIngest(settings, self.publishing)
        # WHEP for streams published at another edge: their feed pulled once from there.
        self.remote = RemoteFeeds(
            locate_by_publisher(self.zk, self.paths, settings.node_id), settings.node_id
        )
        self.rtmp: RtmpServer | None = None
        self.runner: web.AppRunner | None = None
        self.znode: EphemeralNode | None = None

    def info(self) -> EdgeInfo:
        s = self.settings
        return EdgeInfo(
            node=s.node_id,
            public_url=s.http_url,
            rtmp_url=f"rtmp://{s.host}:{s.rtmp_port}/live",
            media_addr=s.media_addr,
            publishers=len(self.publishing.sessions),
        )

    def _changed(self) -> None:
        if self.znode is not None:
            self.zk.spawn(self.znode.update(bytes(self.info())))

    async def _feed(self, stream: str) -> Feed | None:
        relay = self.publishing.relay(stream)
        return relay.feed if relay else await self.remote.get(stream)

    def metrics(self) -> dict[str, float]:
        relays = self.publishing.relays.values()
        return {
            "edge_publishers": len(self.publishing.sessions),
            "edge_packets_in_total": sum(r.packets_in for r in relays),
            "edge_gop_cache_bytes": sum(r.gop.size for r in relays),
            "edge_whep_viewers": sum(len(f.viewers) for f in self.publishing.feeds.values())
            + sum(len(f.viewers) for f in self.remote.feeds.values()),
            "edge_whip_sessions": len(self.whip.sessions),
        }

    async def start(self) -> None:
        s = self.settings
        await self.zk.start()
        ctx = ApiContext(s, self.zk, self.paths, self.redis, Registry(self.zk, self.paths))
        await self.link.start(s.bind, s.media_port)
        self.rtmp = RtmpServer(
            self.publishing, idle_timeout=s.rtmp_idle_timeout, setup_timeout=s.rtmp_setup_timeout
        )
        await self.rtmp.start(s.bind, s.rtmp_port)
        announce_hosts(s.webrtc_host_list)
        app = build_http_app(ctx, self._feed)
        whip.add_routes(app, self.whip)
        app[METRICS].append(self.metrics)
        self.runner = await serve(app, s.bind, s.http_port)
        self.znode = await self.zk.ephemeral(self.paths.edge(s.node_id), bytes(self.info()))
        log.info("edge up: http %s, rtmp %d, media %s", s.http_url, s.rtmp_port, s.media_addr)

    async def stop(self) -> None:
        # Stop taking publishers first, then end the ones we have, then leave the cluster.
        if self.rtmp:
            await self.rtmp.stop()
        await self.whip.stop()
        await self.publishing.stop()
        await self.link.stop()
        if self.runner:
            await self.runner.cleanup()
        await self.remote.close_all()
        await self.zk.stop()
        await self.redis.aclose()
        log.info("edge stopped")


async def main(settings: Settings) -> None:
    node = EdgeNode(settings)
    try:
        await node.start()
        reason = await wait_for_signal()
        log.info("edge stopping on %s", reason)
    finally:
        await node.stop()
