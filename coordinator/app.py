"""The coordinator process: one ZooKeeper session, the leader shell, and /healthz /readyz /metrics.

`zoocast coordinator` calls `main(settings)`; it runs until SIGTERM/SIGINT or cancellation, then
resigns (so a standby takes over at once) and closes the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from cluster.config import Settings
from cluster.ops import METRICS, READY_CHECKS, make_app
from cluster.runtime import wait_for_signal
from cluster.zk.bridge import ZkBridge
from coordinator.leader import Leader

log = logging.getLogger(__name__)

LEADER = web.AppKey("leader", Leader)


def build_app(settings: Settings) -> web.Application:
    """The HTTP app; its cleanup context owns the ZooKeeper session and the leader shell."""
    zk = ZkBridge.from_settings(settings)
    leader = Leader(zk, settings.node_id, settings.http_url)
    app = make_app()
    app[LEADER] = leader
    app[READY_CHECKS].append(lambda: None if zk.connected else "ZooKeeper session not connected")
    app[METRICS].append(leader.metrics)

    async def coordination(app: web.Application) -> AsyncIterator[None]:
        await zk.start()
        leader.start()
        try:
            yield
        finally:
            await leader.stop()
            await zk.stop()

    app.cleanup_ctx.append(coordination)
    return app


async def main(settings: Settings) -> None:
    runner = web.AppRunner(build_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.bind, settings.http_port).start()
        log.info("coordinator %s up on %s", settings.node_id, settings.http_url)
        reason = await wait_for_signal()
        log.info("coordinator stopping on %s", reason)
    finally:
        await runner.cleanup()


def run_coordinator(settings: Settings) -> None:
    asyncio.run(main(settings))
