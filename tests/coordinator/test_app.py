"""The coordinator process: ops endpoints, leadership, and a clean exit on cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from cluster.config import Settings
from cluster.paths import Paths
from cluster.payloads import LeaderInfo
from cluster.zk.bridge import ZkBridge
from coordinator.app import LEADER, build_app, main
from tests.conftest import await_for
from zoocast.local.servers import ZooKeeperServer, free_port

AiohttpClient = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


def _settings(zk_server: ZooKeeperServer, zk_root: str, node: str = "c1") -> Settings:
    return Settings(
        zk=zk_server.hosts,
        zk_root=zk_root,
        node_id=node,
        session_timeout=1.0,
        http_port=free_port(),
    )


async def test_ops_endpoints_and_leadership(
    aiohttp_client: AiohttpClient, zk_server: ZooKeeperServer, zk_root: str
) -> None:
    app = build_app(_settings(zk_server, zk_root))
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await await_for(lambda: app[LEADER].leading, "leadership")

    async def leader_metric() -> bool:
        text = await (await client.get("/metrics")).text()
        return "zoocast_coordinator_leader 1.0" in text

    await await_for(leader_metric, "the leader metric")


async def test_main_runs_until_cancelled_and_hands_over(
    zk_server: ZooKeeperServer, zk_root: str
) -> None:
    settings = _settings(zk_server, zk_root)
    task = asyncio.create_task(main(settings))
    observer = ZkBridge(zk_server.hosts, Paths(zk_root), 1.0)
    await observer.start()
    try:

        async def leads() -> bool:
            got = await observer.get(observer.paths.leader)
            return got is not None and LeaderInfo.parse(got[0]).api_url == settings.http_url

        await await_for(leads, "the coordinator to lead")
        async with aiohttp.ClientSession() as http, http.get(f"{settings.http_url}/healthz") as r:
            assert r.status == 200
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # It resigned and closed its session: no leader znode, no candidate left.
        assert await observer.get(observer.paths.leader) is None
        assert await observer.children(observer.paths.election) == []
    finally:
        task.cancel()
        await observer.stop()
