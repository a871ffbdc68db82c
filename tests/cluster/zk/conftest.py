"""Bridges on the shared real ZooKeeper, each test under its own root, closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from cluster.paths import Paths
from cluster.zk.bridge import ZkBridge
from tests.cluster.zk.proxy import Proxy
from zoocast.local.servers import ZooKeeperServer

# The test server's tickTime is 100 ms, so 1 s is inside its [0.2 s, 20 s] bounds.
SESSION_TIMEOUT = 1.0

BridgeFactory = Callable[..., Awaitable[ZkBridge]]


@pytest.fixture
def paths(zk_root: str) -> Paths:
    return Paths(zk_root)


@pytest.fixture
async def proxy(zk_server: ZooKeeperServer) -> AsyncIterator[Proxy]:
    p = await Proxy(zk_server.port).start()
    yield p
    await p.stop()


@pytest.fixture
async def bridges(zk_server: ZooKeeperServer, paths: Paths) -> AsyncIterator[BridgeFactory]:
    """`await bridges(hosts=None, **kwargs)`: a started bridge, stopped at teardown."""
    made: list[ZkBridge] = []

    async def make(hosts: str | None = None, **kwargs: object) -> ZkBridge:
        kwargs.setdefault("session_timeout", SESSION_TIMEOUT)
        kwargs.setdefault("backoff_cap", 0.2)
        bridge = ZkBridge(hosts or zk_server.hosts, paths, **kwargs)  # type: ignore[arg-type]
        made.append(bridge)
        await bridge.start()
        return bridge

    yield make
    for bridge in made:
        await bridge.stop()
